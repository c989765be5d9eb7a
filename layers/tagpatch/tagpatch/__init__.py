"""tagpatch: the shared, typed package every tagpatch Lambda function uses (shipped as a layer)."""
