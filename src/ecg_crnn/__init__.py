"""ecg-crnn: how much temporal modeling is enough for multi-label ECG classification on PTB-XL?"""

__version__ = "0.1.0"
