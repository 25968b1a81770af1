"""The standard 12 leads, in PTB-XL's order (that of its WFDB headers)."""

LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
LIMB_LEADS = LEADS[:6]
CHEST_LEADS = LEADS[6:]
