"""Datasets: a SPEC string in, a Dataset of images and labels out, never more in memory than fits.

specs         parse_spec, load_dataset and describe_specs: the public way in; which SPEC a file may name
dataset       Dataset, the one thing every loader returns, and its train/test split
pixels        Pixels: 8-bit images kept as uint8, read as float32 in [0, 1]
idx, npz, image_folder   one loader per file format; embedded and sprites need no file
image_arrays  checks shared by the npz loader and the Python API's arrays
factor_arrays ground-truth factors read from an npz file, checked
checks        opening files defensively: regular files only, one sentence per OS error
streaming/    datasets larger than memory (hf:DIR), decoded a batch at a time
"""
