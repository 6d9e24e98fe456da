"""OCI Distribution Spec v1.1 handlers, one module per resource."""
