"""Generated stubs of the processor <-> sidecar protocol (proto/behavior/v1); `make proto`."""
