"""Moving data in and out as JSON Lines: `{"type": ..., "data": <REST representation>}`.

`kinds` says, per resource, how it is read and written; `export` streams a database out,
`load` validates and writes a file in one transaction.
"""
