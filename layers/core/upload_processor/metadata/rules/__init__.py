"""The cross-file rules: what aind-data-schema 2.9.2 does not check across a session's files.

One module per rule family; each rule is a public function that appends its issues (stable
rule ids) to the list it is given, and never raises for a problem of the session.
"""
