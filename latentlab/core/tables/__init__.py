"""Latent tables: one row per image (index, split, label, mu_0.., logvar_0..), from a few thousand rows
in a CSV to tens of millions in Parquet, written as they are encoded and read back checked.

latent_table  LatentTable, encode_table and write_table (CSV, NPZ, Parquet)
parquet_table the Parquet layout: written a row group at a time, atomically
table_rows    a table's rows as they are encoded, in order, shared between torchrun ranks
table_reader  the one reader: read_latent_table for the window, column by column (millions of rows), and
              read_table as a LatentTable; every value checked
"""
