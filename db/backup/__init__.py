"""Backups of everything BMS holds: one tar with a manifest, the database dump and the media.

`create` writes an archive, `verify` checks one, `restore` loads one into a database.
Nothing here imports `bms`: the CLI passes URLs and directories in.
"""
