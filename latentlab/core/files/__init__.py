"""What latentlab reads from and writes to disk; every field read is validated, every save atomic.

checkpoint    load_checkpoint / save_checkpoint: one .safetensors file, never unpickled
model_spec    open_model(SPEC): checkpoints, a user's code, diffusers folders; weights files
safetensors_reader  header-first bounded reading of every .safetensors file, regular files only
diffusers_folder    a diffusers folder's config and weights checked before diffusers reads them
metadata      the one builder and validator of checkpoint and weights-file metadata
preview       the latent preview a checkpoint carries, read with numpy alone
latent_table  the table of every image's latent mean and log-variance (CSV, NPZ)
atomic        write_atomic, atomic_writer and BackgroundWriter: temporary file, fsync, replace;
              refuse_input_as_output, the one check that an output never replaces an input
export        PNG grids and GIFs of decoded images
settings      the window's saved settings, validated as input
bundled       the pretrained models shipped inside the package
"""
