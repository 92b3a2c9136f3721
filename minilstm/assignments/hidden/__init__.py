"""Hidden assignment tests: run by ``minilstm grade`` only, never copied into a student version."""
