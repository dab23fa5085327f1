"""The catalog service: organisations, buckets, sources, series, keys, users and groups, each
operation checked for the principal's organisation, scope and bucket limit (auth/access.py) before
it touches the store. Every dialect, the admin routes and the CLI's server side go through it;
none of them sees a Reader or a WriteTx."""

from __future__ import annotations

from sensorbase.auth.keys import KeyRing
from sensorbase.auth.users import Passwords
from sensorbase.catalog.buckets import Buckets
from sensorbase.catalog.groups import Groups
from sensorbase.catalog.keys import Keys
from sensorbase.catalog.orgs import Orgs
from sensorbase.catalog.points import Points
from sensorbase.catalog.series import SeriesCatalog
from sensorbase.catalog.sources import Sources
from sensorbase.catalog.users import Users
from sensorbase.catalog.work import Work


class Catalog:
    def __init__(self, work: Work, ring: KeyRing, passwords: Passwords) -> None:
        self.work = work
        self.orgs = Orgs(work, ring)
        self.buckets = Buckets(work, ring)
        self.sources = Sources(work, ring)
        self.series = SeriesCatalog(work)
        self.points = Points(work)
        self.keys = Keys(work, ring)
        self.users = Users(work, passwords)
        self.groups = Groups(work)
