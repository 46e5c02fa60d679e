"""The only modules of the package that talk to AWS. Logic modules receive what these return."""
