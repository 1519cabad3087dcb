"""Request and response bodies of the REST API (pydantic), one module per resource."""
