"""What people read: reports, compare, diff, the overview page, following a search. Imports every wing
but ``cli``."""
