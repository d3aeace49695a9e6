"""Datasets larger than memory: images kept on disk and decoded a batch at a time.

hf            hf:DIR: Hugging Face save_to_disk folders (memory-mapped Arrow) and Parquet folders
streamed      StreamedPixels: images decoded from disk a batch at a time, never held whole
"""
