"""Rows the server writes: the admin lists and shows them, never adds, changes or deletes."""


class ReadOnly:
    """Mix in before the admin (or inline) class."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # rows go with what owns them
