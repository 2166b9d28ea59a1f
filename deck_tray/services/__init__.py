"""Services: watching, sending, notifying, serving the socket (QtCore only, no widgets)."""
