"""What latentlab reads from and writes to disk; every field read is validated, every save atomic.

checkpoint    load_checkpoint / save_checkpoint: one .safetensors file, never unpickled
model_spec    open_model(SPEC): checkpoints, a user's code, diffusers folders; weights files
metadata      the one validator for a checkpoint's JSON metadata
preview       the latent preview a checkpoint carries, read with numpy alone
latent_table  the table of every image's latent mean and log-variance (CSV, NPZ, Parquet)
parquet_table the Parquet layout of that table: written a row group at a time; read_table_schema
table_rows    a table's rows as they are encoded, in order, shared between torchrun ranks
atomic        write_atomic and BackgroundWriter: temporary file, fsync, replace
export        PNG grids and GIFs of decoded images
settings      the window's saved settings, validated as input
bundled       the pretrained models shipped inside the package
"""
