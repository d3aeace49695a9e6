"""What latentlab reads from and writes to disk; every field read is validated, every save atomic.

checkpoint    load_checkpoint / save_checkpoint: one .safetensors file, never unpickled
model_spec    open_model(SPEC): checkpoints, a user's code, diffusers and pythae folders; weights files
safetensors_file  header-first bounded reading of every .safetensors file (regular files only), and the
              streaming writer of checkpoints and weights files
diffusers_folder    a diffusers folder's config and weights checked before diffusers reads them
torch_weights Lightning .ckpt and torch.save state dicts named with --weights, read weights-only
model_folders fine-tuned diffusers and pythae models written back to their own folder formats
metadata      the one builder and validator of checkpoint and weights-file metadata
preview       the latent preview a checkpoint carries, read with numpy alone
atomic        write_atomic, atomic_writer and BackgroundWriter: temporary file, fsync, replace;
              refuse_input_as_output, the one check that an output never replaces an input
export        PNG grids and GIFs of decoded images
settings      the window's saved settings, validated as input
bundled       the pretrained models shipped inside the package

Latent tables have a room of their own (core/tables), attribute vectors' files sit with them (core/meaning).
"""
