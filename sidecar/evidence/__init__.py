"""Evidence: the columnar batch every decoder produces and the annotations the engine returns."""
