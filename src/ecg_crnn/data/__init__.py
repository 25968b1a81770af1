"""Data stages: download, label filtering, signal cache, segmentation, and synthetic PTB-XL."""
