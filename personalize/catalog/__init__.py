"""Mirror host-site models into :class:`personalize.models.Item` rows."""
