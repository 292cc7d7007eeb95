"""Bank statement import: parsers (pure), bulk booking, and the import service.

Entry points: `service.statement_import` and the `thuphi import_statement` command.
"""
