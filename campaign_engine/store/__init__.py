"""The system of record: campaigns, contacts and every call attempt in PostgreSQL.

Temporal orchestrates every wait, dial and redial; these tables keep what happened, for as
long as the business keeps its records (Temporal deletes histories at its retention). Every
REST read comes from here in a fixed number of SQL statements.
"""
