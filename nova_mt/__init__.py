"""Translation stage (CTranslate2, Apertium); see the translation issue."""
