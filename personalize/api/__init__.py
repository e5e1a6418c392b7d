"""The REST API (Django REST framework): thin views over the public service functions."""
