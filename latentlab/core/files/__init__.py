"""What latentlab reads from and writes to disk; every field read is validated, every save atomic.

checkpoint    load_checkpoint / save_checkpoint: one .safetensors file, never unpickled
model_spec    open_model(SPEC): checkpoints, a user's code, diffusers folders; weights files
spec_forms    the model SPEC forms as help text (no torch)
safetensors_reader  header-first bounded reading of every .safetensors file, regular files only
diffusers_folder    a diffusers folder's config and weights checked before diffusers reads them
metadata      the one builder and validator of checkpoint and weights-file metadata
preview       the latent preview a checkpoint carries, read with numpy alone
latent_table  the table of every image's latent mean and log-variance (CSV, NPZ, Parquet)
parquet_table the Parquet layout of that table: written a row group at a time; read_table_schema
table_rows    a table's rows as they are encoded, in order, shared between torchrun ranks
table_reader  reading a latent table (Parquet, CSV, NPZ) for the window, checked column by column
atomic        write_atomic, atomic_writer and BackgroundWriter: temporary file, fsync, replace;
              refuse_input_as_output, the one check that an output never replaces an input
export        PNG grids and GIFs of decoded images
vectors       attribute vectors as .npz (no pickle), validated on load
settings      the window's saved settings, validated as input
bundled       the pretrained models shipped inside the package
torch_weights Lightning .ckpt and torch.save state dicts named with --weights, read weights-only
model_folders fine-tuned diffusers and pythae models written back to their own folder formats
"""
