"""The shared backend: PostgreSQL (store.py), for several Sensorbase nodes on one database.

Modules: store (opening, partitions), writer (the write connection, commits), tx (the write
transaction), append (points by binary COPY), reader (catalog lookups and point reads), pool
(the reading connections), schema (tables and migrations), errors (where `psycopg`
exceptions stop).
"""
