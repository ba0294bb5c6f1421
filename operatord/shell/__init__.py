"""Shell: observe → decide → apply, wired from ports; the only impure loop around the core."""
