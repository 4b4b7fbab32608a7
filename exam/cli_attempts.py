"""Commands about attempts (closing overdue attempts): attached to the ``exam`` group."""
