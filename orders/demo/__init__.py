"""The demo data of `manage.py seed_demo`: the tables (`data`, `contracts`), what
they make before any order (`world`), and the story engine that tells each
order's life through the order services (`story`)."""
