"""Seeded, deterministic demo data: what an e-commerce shop and its email programme produce.

Customers are generated in fixed-size chunks, each from its own RNG stream derived from
``(seed, chunk index)``, and written to Parquet chunk by chunk, so the output depends only
on the seed, the customer count and the as-of date, and memory stays flat at any scale
(1M customers ≈ one chunk in memory at a time).

Behaviour comes from personas (loyal buyers, regulars, window shoppers, cart abandoners,
dormant, churned, new) so that every seeds segment has members. Dirt is injected by a
separate RNG stream *on top of* the clean rows (extra bad rows, duplicates, cosmetic
variants), so a dirty dataset's valid rows are exactly the clean dataset's rows and every
injected row is listed in ``dirt_manifest.json`` with the reason staging must give it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segwise.raw_schema import RAW_TABLES

CHUNK_SIZE = 50_000
DAY_S = 86_400.0

CATEGORIES = ["outdoor", "electronics", "home", "beauty", "fashion", "books", "toys", "sports"]
COUNTRIES = ["GB", "US", "DE", "FR", "NL", "ES", "IT", "SE", "IE", "AU"]
COUNTRY_P = [0.30, 0.25, 0.10, 0.08, 0.06, 0.05, 0.05, 0.04, 0.04, 0.03]
FIRST = ["ada", "alan", "grace", "linus", "margaret", "tim", "barbara", "dennis", "frances",
         "ken", "radia", "john", "sophie", "yusuf", "mei", "carlos", "amara", "ingrid"]
LAST = ["lovelace", "turing", "hopper", "torvalds", "hamilton", "berners", "liskov", "ritchie",
        "allen", "thompson", "perlman", "mccarthy", "wilson", "kaya", "chen", "garcia", "okafor"]
DOMAINS = ["example.com", "mail.test", "inbox.example", "post.example.org"]
TIERS = ["gold", "silver", "bronze", "none"]
DEVICES = ["desktop", "mobile", "tablet"]


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    base_orders: int  # orders every member has
    extra_orders: float  # Poisson mean of further orders
    last_order_days: tuple[float, float]  # days before as-of of the latest order
    sessions: float  # Poisson mean of browsing sessions
    session_days: tuple[float, float]  # sessions happen this many days before as-of
    p_cart: float  # a session adds to cart
    p_open: float
    p_click: float  # given an open
    tiers: tuple[float, float, float, float]  # gold, silver, bronze, none


PERSONAS = [
    Persona("loyal", 0.15, 2, 5.0, (0.2, 20), 8, (0.1, 60), 0.35, 0.65, 0.35, (0.5, 0.3, 0.15, 0.05)),
    Persona("regular", 0.20, 1, 2.0, (8, 120), 3, (0.5, 90), 0.2, 0.35, 0.12, (0.1, 0.3, 0.4, 0.2)),
    Persona("window_shopper", 0.18, 0, 0.3, (60, 400), 5, (2.1, 30), 0.0, 0.3, 0.08, (0.0, 0.1, 0.3, 0.6)),
    Persona("cart_abandoner", 0.12, 0, 1.0, (45, 300), 3, (1.1, 6), 0.9, 0.25, 0.06, (0.05, 0.15, 0.4, 0.4)),
    Persona("dormant", 0.15, 1, 1.0, (100, 330), 0.3, (95, 300), 0.1, 0.05, 0.0, (0.05, 0.2, 0.35, 0.4)),
    Persona("churned", 0.12, 1, 1.0, (400, 900), 0.0, (400, 900), 0.0, 0.0, 0.0, (0.0, 0.1, 0.3, 0.6)),
    Persona("new", 0.08, 1, 0.0, (0.5, 25), 2, (0.1, 20), 0.3, 0.55, 0.25, (0.0, 0.0, 0.3, 0.7)),
]


@dataclass(frozen=True)
class TargetedCampaign:
    """A campaign sent to one segment's treatment members (everyone the generator expects
    in the segment, less the segment's holdout), half a day after the lead-in build."""
    campaign_id: str
    subject: str
    segment: str
    holdout_pct: float  # the segment's holdout_pct (segments/*.yml)
    personas: tuple[str, ...]  # who the generator expects in the segment
    p_open: float
    p_click: float  # given an open
    p_respond: float  # a recipient orders within the measurement window


# The demo's measurable story (segwise run --lead-in-days): the segments are first built
# as of LEAD_IN_DAYS before the as-of date; half a day later the win-back campaign goes to
# inactive_90d's treatment members and works (its recipients order far more than the
# holdout), the browse reminder goes to engaged_non_buyers_90d's and does nothing.
LEAD_IN_DAYS = 14
TARGETED_SEND_DAYS_AGO = LEAD_IN_DAYS - 0.5
TARGETED = (
    TargetedCampaign("CMP-WINBACK", "We miss you: 15 % off your next order", "inactive_90d",
                     15.0, ("dormant", "churned"), 0.35, 0.4, 0.3),
    TargetedCampaign("CMP-BROWSE", "Still thinking it over?", "engaged_non_buyers_90d",
                     15.0, ("window_shopper",), 0.4, 0.3, 0.0),
)


# the universal control group (dbt vars universal_control_pct / _salt): no list reaches it
UNIVERSAL_CONTROL = ("universal_control", 5.0)


def is_holdout(customer_id: str, salt: str, pct: float) -> bool:
    """The segments' holdout hash (macros/is_holdout.sql), in Python."""
    bucket = int(hashlib.md5(f"{salt}:{customer_id}".encode()).hexdigest()[:8], 16) % 10000
    return bucket < round(pct * 100)


@dataclass
class GenerateResult:
    out_dir: Path
    rows: dict[str, int]
    dirt: dict[str, dict[str, int]]


def _anchor(as_of: date) -> np.datetime64:
    """End of the as-of day (next midnight, UTC): every generated timestamp is before it."""
    return np.datetime64(datetime.combine(as_of + timedelta(days=1), datetime.min.time()), "us")


def _ts(anchor: np.datetime64, days_ago: np.ndarray) -> np.ndarray:
    return anchor - (np.asarray(days_ago) * DAY_S * 1e6).astype("timedelta64[us]")


def _position_within(counts: np.ndarray) -> np.ndarray:
    """For np.repeat(x, counts): the 0-based position of each row within its group."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(counts.sum()) - np.repeat(starts, counts)


def _ids(prefix: str, values: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.asarray(values).astype(str)).astype(object)


def _products(rng: np.random.Generator, n: int = 240) -> pd.DataFrame:
    ids = np.arange(1, n + 1)
    cats = np.array(CATEGORIES)[ids % len(CATEGORIES)]
    return pd.DataFrame(
        {
            "product_id": _ids("P", np.char.zfill(ids.astype(str), 4)),
            "product_name": [f"{c.title()} item {i}" for c, i in zip(cats, ids, strict=True)],
            "category": cats.astype(object),
            "list_price": np.round(rng.lognormal(3.2, 0.6, n), 2),
        }
    )


def _targeted_campaigns(anchor: np.datetime64) -> pd.DataFrame:
    sent = _ts(anchor, np.full(len(TARGETED), TARGETED_SEND_DAYS_AGO))
    return pd.DataFrame({
        "campaign_id": [c.campaign_id for c in TARGETED],
        "campaign_name": [f"{c.segment} campaign" for c in TARGETED],
        "subject": [c.subject for c in TARGETED],
        "sent_at": sent,
    })


def _campaigns(anchor: np.datetime64, weeks: int = 26) -> pd.DataFrame:
    k = np.arange(weeks)
    sent = _ts(anchor, 7 * k + 1.6)  # weekly, the latest 1.6 days before as-of end
    return pd.DataFrame(
        {
            "campaign_id": _ids("CMP", np.char.zfill((weeks - k).astype(str), 3)),
            "campaign_name": [f"Weekly newsletter #{weeks - i}" for i in k],
            "subject": [f"This week's picks ({weeks - i})" for i in k],
            "sent_at": sent,
        }
    )


AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_BAND_P = (0.12, 0.26, 0.24, 0.18, 0.12, 0.08)
REGIONS = ("north", "south", "east", "west", "central")


def _attributes(rng: np.random.Generator, contacts: pd.DataFrame) -> pd.DataFrame:
    """The demo's custom contact attributes (declared in dbt_project.yml), long: one row
    per customer and attribute the CRM holds, values as text. Drawn from their own random
    stream, so the other tables are the same with or without them."""
    n = len(contacts)
    values = {
        "age_band": np.array(AGE_BANDS, dtype=object)[
            rng.choice(len(AGE_BANDS), size=n, p=AGE_BAND_P)],
        "region": np.array(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), n)],
        "loyalty_points": rng.integers(0, 5000, n).astype(str).astype(object),
        "is_wholesale": np.where(rng.random(n) < 0.06, "true", "false").astype(object),
    }
    share = {"age_band": 0.8, "region": 0.95, "loyalty_points": 0.6, "is_wholesale": 0.5}
    parts = []
    for name, column in values.items():
        held = rng.random(n) < share[name]
        parts.append(pd.DataFrame({"customer_id": contacts["customer_id"].to_numpy()[held],
                                   "attribute": name, "value": column[held],
                                   "updated_at": contacts["updated_at"].to_numpy()[held]}))
    return pd.concat(parts, ignore_index=True)


class _Chunk:
    """All raw rows for one chunk of customers."""

    def __init__(self, rng: np.random.Generator, start: int, n: int, anchor: np.datetime64,
                 products: pd.DataFrame, campaigns: pd.DataFrame) -> None:
        self.rng, self.anchor, self.products, self.campaigns = rng, anchor, products, campaigns
        self.idx = np.arange(start, start + n)
        shares = np.array([p.share for p in PERSONAS])
        self.persona = rng.choice(len(PERSONAS), size=n, p=shares / shares.sum())
        self.cid = _ids("", np.char.zfill((self.idx + 1).astype(str), 8))

    def _param(self, getter: Callable[[Persona], float]) -> np.ndarray:
        return np.array([getter(p) for p in PERSONAS], dtype=float)[self.persona]

    def contacts_and_orders(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        rng, n = self.rng, len(self.idx)
        lo = self._param(lambda p: p.last_order_days[0])
        hi = self._param(lambda p: p.last_order_days[1])
        last_ago = lo + rng.random(n) * (hi - lo)
        is_new = self.persona == [p.name for p in PERSONAS].index("new")
        signup_ago = np.where(
            is_new, last_ago + rng.random(n) * 7, last_ago + 20 + rng.random(n) * 1000
        )
        n_orders = (self._param(lambda p: p.base_orders).astype(np.int64)
                    + rng.poisson(self._param(lambda p: p.extra_orders)))
        self.has_email_consent = rng.random(n) < 0.85
        self.signup_ago = signup_ago
        tier_p = np.array([p.tiers for p in PERSONAS])[self.persona]
        tier = (rng.random(n)[:, None] > np.cumsum(tier_p, axis=1)).sum(axis=1).clip(0, 3)
        first = np.array(FIRST)[rng.integers(0, len(FIRST), n)]
        last = np.array(LAST)[rng.integers(0, len(LAST), n)]
        email = (np.char.add(np.char.add(np.char.add(first, "."), last), ".")
                 + self.cid.astype(str) + "@" + np.array(DOMAINS)[self.idx % len(DOMAINS)])
        sms = rng.random(n) < 0.4
        signup_at = _ts(self.anchor, signup_ago)
        consent_at = _ts(self.anchor, signup_ago - rng.random(n) * np.minimum(signup_ago, 3))
        contacts = pd.DataFrame(
            {
                "customer_id": self.cid,
                "email": email.astype(object),
                "first_name": np.char.capitalize(first).astype(object),
                "last_name": np.char.capitalize(last).astype(object),
                "country": rng.choice(COUNTRIES, size=n, p=COUNTRY_P).astype(object),
                "signup_at": signup_at,
                "loyalty_tier": np.array(TIERS)[tier].astype(object),
                "email_consent": self.has_email_consent,
                "email_consent_at": pd.Series(consent_at).where(self.has_email_consent),
                "sms_consent": sms,
                "sms_consent_at": pd.Series(consent_at).where(sms),
                "updated_at": _ts(self.anchor, np.minimum(signup_ago, rng.random(n) * 200)),
            }
        )
        # orders: the k-th order of a customer; k=0 is the latest
        cust = np.repeat(np.arange(n), n_orders)
        k = _position_within(n_orders)
        spread = rng.random(len(cust))
        ago = np.where(
            k == 0,
            last_ago[cust],
            last_ago[cust] + spread * (signup_ago[cust] - last_ago[cust]),
        )
        # loyal buyers often order twice within a month
        loyal = self.persona[cust] == 0
        close = (k == 1) & loyal & (rng.random(len(cust)) < 0.6)
        ago = np.where(close, last_ago[cust] + 1 + rng.random(len(cust)) * 8, ago)
        order_ids = np.char.add(np.char.add("O", self.cid[cust].astype(str)),
                                np.char.add("-", k.astype(str))).astype(object)
        n_items = rng.integers(1, 4, len(cust))
        item_order = np.repeat(np.arange(len(cust)), n_items)
        line = _position_within(n_items)
        prod = rng.integers(0, len(self.products), len(item_order))
        qty = rng.integers(1, 4, len(item_order))
        price = self.products["list_price"].to_numpy()[prod]
        items = pd.DataFrame(
            {
                "order_item_id": np.char.add(np.char.add(order_ids[item_order].astype(str), "-"),
                                             line.astype(str)).astype(object),
                "order_id": order_ids[item_order],
                "product_id": self.products["product_id"].to_numpy()[prod],
                "quantity": qty.astype("int64"),
                "unit_price": price,
            }
        )
        totals = np.bincount(item_order, weights=qty * price, minlength=len(cust))
        orders = pd.DataFrame(
            {
                "order_id": order_ids,
                "customer_id": self.cid[cust],
                "ordered_at": _ts(self.anchor, ago),
                "status": "completed",
                "currency": "EUR",
                "order_total": np.round(totals, 2),
                "country": contacts["country"].to_numpy()[cust],
            }
        )
        self.orders = orders
        self.contacts_country = contacts["country"].to_numpy()
        self.items_with_products = items.assign(_cust=cust[item_order])
        return contacts, orders, items

    def web_events(self) -> pd.DataFrame:
        rng, n = self.rng, len(self.idx)
        n_sess = rng.poisson(self._param(lambda p: p.sessions))
        # window shoppers and cart abandoners always have a recent session
        n_sess = np.where(np.isin(self.persona, [2, 3]), np.maximum(n_sess, 1), n_sess)
        cust = np.repeat(np.arange(n), n_sess)
        lo = self._param(lambda p: p.session_days[0])[cust]
        hi = self._param(lambda p: p.session_days[1])[cust]
        start_ago = lo + rng.random(len(cust)) * (hi - lo)
        p_cart = self._param(lambda p: p.p_cart)[cust]
        # slots: page_view, product_view x3, add_to_cart, remove_from_cart, checkout_started
        slots = np.array(["page_view", "product_view", "product_view", "product_view",
                          "add_to_cart", "remove_from_cart", "checkout_started"])
        s = len(cust)
        cart = rng.random(s) < p_cart
        mask = np.column_stack([
            np.ones(s, bool),
            np.ones(s, bool),
            rng.random(s) < 0.6,
            rng.random(s) < 0.3,
            cart,
            cart & (rng.random(s) < 0.15),
            cart & (rng.random(s) < 0.3),
        ])
        sess_rows = np.repeat(np.arange(s), mask.sum(axis=1))
        slot = np.tile(np.arange(len(slots)), (s, 1))[mask]
        offsets = slot * (20 + rng.random(len(slot)) * 100)  # seconds into the session
        ev = self._session_frame(cust[sess_rows], start_ago[sess_rows] - offsets / DAY_S,
                                 slots[slot], rng.integers(0, 2, s)[sess_rows],
                                 rng.random(s)[sess_rows] < 0.8, sess_rows)
        # every order in the last 90 days has its purchase journey on the site
        recent = self.orders[self.orders["ordered_at"] >= self.anchor - np.timedelta64(90, "D")]
        if len(recent):
            pos = {c: i for i, c in enumerate(self.cid)}
            oc = np.array([pos[c] for c in recent["customer_id"]])
            o_ago = (self.anchor - recent["ordered_at"].to_numpy()) / np.timedelta64(1, "s") / DAY_S
            steps = np.array(["product_view", "add_to_cart", "checkout_started", "purchase"])
            r = np.repeat(np.arange(len(recent)), len(steps))
            st = np.tile(np.arange(len(steps)), len(recent))
            buy = self._session_frame(oc[r], o_ago[r] + (3 - st) * 90 / DAY_S, steps[st],
                                      np.zeros(len(r), int), np.ones(len(r), bool), s + r)
            buy.loc[buy["event_type"] == "purchase", "order_id"] = recent["order_id"].to_numpy()
            buy.loc[buy["event_type"] == "purchase", ["product_id", "category"]] = None
            ev = pd.concat([ev, buy], ignore_index=True)
        ev["event_id"] = _ids("E", np.char.zfill(self.idx[0].astype(str), 8)) + "-" + \
            np.arange(len(ev)).astype(str).astype(object)
        return ev[list(RAW_TABLES["web_events"].names)]

    def _session_frame(self, cust: np.ndarray, ago: np.ndarray, types: np.ndarray,
                       device: np.ndarray, logged_in: np.ndarray, session: np.ndarray
                       ) -> pd.DataFrame:
        rng = self.rng
        m = len(cust)
        prod = rng.integers(0, len(self.products), m)
        has_prod = np.isin(types, ["product_view", "add_to_cart", "remove_from_cart"])
        # a session browses one category: derive product from session for coherence
        prod = np.where(has_prod, (session * 7 + prod % 3) % len(self.products), prod)
        return pd.DataFrame(
            {
                "event_id": None,
                "anonymous_id": np.char.add(np.char.add("anon-", self.cid[cust].astype(str)),
                                            np.char.add("-", device.astype(str))).astype(object),
                "customer_id": np.where(logged_in, self.cid[cust], None),
                "event_type": types.astype(object),
                "occurred_at": _ts(self.anchor, ago),
                "device": np.array(DEVICES)[device].astype(object),
                "product_id": np.where(has_prod, self.products["product_id"].to_numpy()[prod], None),
                "category": np.where(has_prod, self.products["category"].to_numpy()[prod], None),
                "page_duration_s": np.round(rng.gamma(2.0, 25.0, m), 1),
                "scroll_depth_pct": np.round(rng.beta(2, 2, m) * 100, 1),
                "order_id": None,
            }
        )

    def email_events(self) -> pd.DataFrame:
        rng, n = self.rng, len(self.idx)
        camp_sent = self.campaigns["sent_at"].to_numpy()
        camp_ago = (self.anchor - camp_sent) / np.timedelta64(1, "s") / DAY_S
        c = len(camp_sent)
        got = (self.has_email_consent[:, None] & (rng.random((n, c)) < 0.85)
               & (self.signup_ago[:, None] > camp_ago[None, :]))
        cu, ca = np.nonzero(got)
        m = len(cu)
        bounce = rng.random(m) < 0.02
        p_open = self._param(lambda p: p.p_open)[cu]
        p_click = self._param(lambda p: p.p_click)[cu]
        opened = ~bounce & (rng.random(m) < p_open)
        clicked = opened & (rng.random(m) < p_click)
        unsub = ~bounce & (rng.random(m) < 0.003)
        complaint = ~bounce & (rng.random(m) < 0.0005)
        lag_h = rng.random(m) * 40 + 0.1
        frames = []
        for etype, sel, lag in [
            ("sent", np.ones(m, bool), 0.0),
            ("delivered", ~bounce, 0.01),
            ("bounce", bounce, 0.01),
            ("open", opened, lag_h),
            ("click", clicked, lag_h + 0.05),
            ("unsubscribe", unsub, lag_h + 0.1),
            ("complaint", complaint, lag_h + 0.2),
        ]:
            lag_arr = np.broadcast_to(lag, (m,))[sel]
            frames.append(pd.DataFrame({
                "campaign_id": self.campaigns["campaign_id"].to_numpy()[ca[sel]],
                "customer_id": self.cid[cu[sel]],
                "event_type": etype,
                "occurred_at": camp_sent[ca[sel]] + (lag_arr * 3.6e9).astype("timedelta64[us]"),
            }))
        ev = pd.concat(frames, ignore_index=True)
        ev = ev[ev["occurred_at"] < self.anchor].reset_index(drop=True)
        email_by_cid = dict(zip(self.cid, self._emails, strict=True))
        ev["email"] = ev["customer_id"].map(email_by_cid)
        ev["email_event_id"] = _ids("M", np.char.zfill(self.idx[0].astype(str), 8)) + "-" + \
            np.arange(len(ev)).astype(str).astype(object)
        return ev[list(RAW_TABLES["email_events"].names)]


    def targeted(self, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame,
                                                         pd.DataFrame]:
        """The targeted campaigns' messages and the orders they cause (TARGETED): extra
        orders, their lines and email events, from their own random stream so the other
        rows are the same with or without them."""
        names = [p.name for p in PERSONAS]
        orders, items, events = [], [], []
        control = np.array([is_holdout(cid, *UNIVERSAL_CONTROL) for cid in self.cid])
        for c in TARGETED:
            holdout = control | np.array([is_holdout(cid, c.segment, c.holdout_pct)
                                          for cid in self.cid])
            got = (np.isin(self.persona, [names.index(p) for p in c.personas])
                   & self.has_email_consent & (self.signup_ago > TARGETED_SEND_DAYS_AGO)
                   & ~holdout)
            who = np.nonzero(got)[0]
            m = len(who)
            sent_at = _ts(self.anchor, np.full(m, TARGETED_SEND_DAYS_AGO))
            opened = rng.random(m) < c.p_open
            clicked = opened & (rng.random(m) < c.p_click)
            lag = ((rng.random(m) * 30 + 0.2) * 3.6e9).astype("timedelta64[us]")
            for etype, sel, extra in [("sent", np.ones(m, bool), np.timedelta64(0, "us")),
                                      ("delivered", np.ones(m, bool), np.timedelta64(36, "s")),
                                      ("open", opened, lag),
                                      ("click", clicked, lag + np.timedelta64(3, "m"))]:
                events.append(pd.DataFrame({
                    "campaign_id": c.campaign_id, "customer_id": self.cid[who[sel]],
                    "event_type": etype,
                    "occurred_at": sent_at[sel] + np.broadcast_to(extra, (m,))[sel]}))
            buy = who[rng.random(m) < c.p_respond]
            ago = TARGETED_SEND_DAYS_AGO - 0.5 - rng.random(len(buy)) * (LEAD_IN_DAYS - 3)
            order_ids = np.char.add(np.char.add("O", self.cid[buy].astype(str)),
                                    "-" + c.campaign_id.lower()).astype(object)
            prod = rng.integers(0, len(self.products), len(buy))
            qty = rng.integers(1, 3, len(buy))
            price = self.products["list_price"].to_numpy()[prod]
            orders.append(pd.DataFrame({
                "order_id": order_ids, "customer_id": self.cid[buy],
                "ordered_at": _ts(self.anchor, ago), "status": "completed", "currency": "EUR",
                "order_total": np.round(qty * price, 2),
                "country": self.contacts_country[buy]}))
            items.append(pd.DataFrame({
                "order_item_id": np.char.add(order_ids.astype(str), "-0").astype(object),
                "order_id": order_ids,
                "product_id": self.products["product_id"].to_numpy()[prod],
                "quantity": qty.astype("int64"), "unit_price": price}))
        ev = pd.concat(events, ignore_index=True)
        ev = ev[ev["occurred_at"] < self.anchor].reset_index(drop=True)
        ev["email"] = ev["customer_id"].map(dict(zip(self.cid, self._emails, strict=True)))
        ev["email_event_id"] = _ids("M", np.char.zfill(self.idx[0].astype(str), 8)) + "-t" + \
            np.arange(len(ev)).astype(str).astype(object)
        return (pd.concat(orders, ignore_index=True), pd.concat(items, ignore_index=True),
                ev[list(RAW_TABLES["email_events"].names)])


def _vary_case(rng: np.random.Generator, s: pd.Series) -> pd.Series:
    kind = rng.integers(0, 3, len(s))
    out = s.copy()
    out[kind == 0] = s[kind == 0].str.upper()
    out[kind == 1] = "  " + s[kind == 1] + " "
    out[kind == 2] = s[kind == 2].str.title() + "\t"
    return out


class _Dirt:
    """Injects dirt into one chunk's tables and counts what staging must quarantine."""

    def __init__(self, rng: np.random.Generator, rate: float, anchor: np.datetime64) -> None:
        self.rng, self.rate, self.anchor = rng, rate, anchor
        self.counts: Counter[tuple[str, str]] = Counter()

    def _pick(self, df: pd.DataFrame) -> pd.DataFrame:
        k = int(round(len(df) * self.rate))
        if k == 0 or len(df) == 0:
            return df.iloc[0:0].copy()
        return df.iloc[self.rng.choice(len(df), size=k, replace=False)].copy()

    def _add(self, table: str, reason: str, df: pd.DataFrame) -> pd.DataFrame:
        self.counts[(table, reason)] += len(df)
        return df

    def _future(self, n: int) -> np.ndarray:
        base = np.datetime64("2099-01-01T00:00:00", "us")
        return base + (self.rng.random(n) * 300 * DAY_S * 1e6).astype("timedelta64[us]")

    def contacts(self, df: pd.DataFrame) -> pd.DataFrame:
        dup = self._pick(df)
        dup["email"] = _vary_case(self.rng, dup["email"])
        dup["updated_at"] = dup["updated_at"] - pd.Timedelta(days=3)
        other = self._pick(df)
        other["email"] = _vary_case(self.rng, other["email"])
        other["customer_id"] = "X" + other["customer_id"]
        other["updated_at"] = other["updated_at"] - pd.Timedelta(days=5)
        bad = self._pick(df)
        bad["customer_id"] = "Y" + bad["customer_id"]
        bad["email"] = np.where(self.rng.random(len(bad)) < 0.5,
                                bad["email"].str.replace("@", " at ", regex=False),
                                bad["email"].str.split("@").str[0] + "@")
        return pd.concat([
            df,
            self._add("crm_contacts", "duplicate_contact", dup),
            self._add("crm_contacts", "duplicate_email", other),
            self._add("crm_contacts", "invalid_email", bad),
        ], ignore_index=True)

    def attributes(self, df: pd.DataFrame) -> pd.DataFrame:
        dup = self._pick(df)
        dup["updated_at"] = dup["updated_at"] - pd.Timedelta(days=3)
        number = self._pick(df[df["attribute"] == "loyalty_points"])
        number["value"] = self.rng.choice(["n/a", "12,5", "1e3", "--5"], len(number))
        boolean = self._pick(df[df["attribute"] == "is_wholesale"])
        boolean["value"] = self.rng.choice(["maybe", "wholesale", "2"], len(boolean))
        undeclared = self._pick(df)
        undeclared["attribute"] = "favourite_colour"
        return pd.concat([
            df,
            self._add("crm_contact_attributes", "duplicate_attribute", dup),
            self._add("crm_contact_attributes", "invalid_number", number),
            self._add("crm_contact_attributes", "invalid_boolean", boolean),
            self._add("crm_contact_attributes", "undeclared_attribute", undeclared),
        ], ignore_index=True)

    def web_events(self, df: pd.DataFrame) -> pd.DataFrame:
        mixed = self._pick(df[df["category"].notna()])
        df = df.copy()
        df.loc[mixed.index, "category"] = _vary_case(self.rng, mixed["category"])
        self.counts[("web_events", "mixed_case_category (normalised, kept)")] += len(mixed)
        dup = self._pick(df)
        unknown = self._pick(df)
        unknown["event_id"] = unknown["event_id"] + "-u"
        unknown["event_type"] = self.rng.choice(["hover_widget", "Wishlist_Add", "page view"],
                                                len(unknown))
        null_ts = self._pick(df)
        null_ts["event_id"] = null_ts["event_id"] + "-n"
        null_ts["occurred_at"] = pd.NaT
        fut = self._pick(df)
        fut["event_id"] = fut["event_id"] + "-f"
        fut["occurred_at"] = self._future(len(fut))
        return pd.concat([
            df,
            self._add("web_events", "duplicate_event", dup),
            self._add("web_events", "unknown_event_type", unknown),
            self._add("web_events", "null_timestamp", null_ts),
            self._add("web_events", "future_timestamp", fut),
        ], ignore_index=True)

    def orders(self, df: pd.DataFrame) -> pd.DataFrame:
        dup = self._pick(df)
        neg = self._pick(df)
        neg["order_id"] = neg["order_id"] + "-neg"
        neg["order_total"] = -neg["order_total"].abs() - 1
        null_ts = self._pick(df)
        null_ts["order_id"] = null_ts["order_id"] + "-nts"
        null_ts["ordered_at"] = pd.NaT
        fut = self._pick(df)
        fut["order_id"] = fut["order_id"] + "-fut"
        fut["ordered_at"] = self._future(len(fut))
        return pd.concat([
            df,
            self._add("orders", "duplicate_order", dup),
            self._add("orders", "negative_amount", neg),
            self._add("orders", "null_timestamp", null_ts),
            self._add("orders", "future_timestamp", fut),
        ], ignore_index=True)

    def order_items(self, df: pd.DataFrame) -> pd.DataFrame:
        orphan = self._pick(df)
        orphan["order_id"] = "GHOST-" + orphan["order_id"]
        orphan["order_item_id"] = "GHOST-" + orphan["order_item_id"]
        zero = self._pick(df)
        zero["order_item_id"] = zero["order_item_id"] + "-p"
        zero["unit_price"] = np.where(self.rng.random(len(zero)) < 0.5, 0.0, -zero["unit_price"])
        qty = self._pick(df)
        qty["order_item_id"] = qty["order_item_id"] + "-q"
        qty["quantity"] = -self.rng.integers(0, 3, len(qty))
        return pd.concat([
            df,
            self._add("order_items", "orphan_order_item", orphan),
            self._add("order_items", "non_positive_price", zero),
            self._add("order_items", "non_positive_quantity", qty),
        ], ignore_index=True)

    def email_events(self, df: pd.DataFrame) -> pd.DataFrame:
        dup = self._pick(df)
        null_ts = self._pick(df)
        null_ts["email_event_id"] = null_ts["email_event_id"] + "-n"
        null_ts["occurred_at"] = pd.NaT
        return pd.concat([
            df,
            self._add("email_events", "duplicate_event", dup),
            self._add("email_events", "null_timestamp", null_ts),
        ], ignore_index=True)


class _ParquetSink:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows: Counter[str] = Counter()
        self.parts: Counter[str] = Counter()

    def write(self, table: str, df: pd.DataFrame) -> None:
        schema = RAW_TABLES[table]
        folder = self.out_dir / table
        folder.mkdir(parents=True, exist_ok=True)
        arrow = pa.Table.from_pandas(df[list(schema.names)], schema=schema, preserve_index=False)
        pq.write_table(arrow, folder / f"part-{self.parts[table]:05d}.parquet")
        self.parts[table] += 1
        self.rows[table] += len(df)


def generate(out_dir: Path, customers: int = 5_000, seed: int = 42,
             as_of: date | None = None, dirty_rate: float = 0.0,
             progress: Callable[[int, int], None] | None = None) -> GenerateResult:
    """Write the raw tables as Parquet under ``out_dir/<table>/part-*.parquet``."""
    if customers < 1:
        raise ValueError("--customers must be at least 1")
    if not 0.0 <= dirty_rate <= 0.5:
        raise ValueError("--dirty-rate must be between 0 and 0.5")
    as_of = as_of or (date.today() - timedelta(days=1))
    anchor = _anchor(as_of)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    sink = _ParquetSink(out_dir)
    base_rng = np.random.default_rng([seed, 0])
    products = _products(base_rng)
    campaigns = _campaigns(anchor)
    dirt_total: Counter[tuple[str, str]] = Counter()
    sink.write("products", products)
    sink.write("email_campaigns", pd.concat([campaigns, _targeted_campaigns(anchor)],
                                            ignore_index=True))
    n_chunks = (customers + CHUNK_SIZE - 1) // CHUNK_SIZE
    for i in range(n_chunks):
        start = i * CHUNK_SIZE
        n = min(CHUNK_SIZE, customers - start)
        chunk = _Chunk(np.random.default_rng([seed, 1, i]), start, n, anchor, products, campaigns)
        contacts, orders, items = chunk.contacts_and_orders()
        attributes = _attributes(np.random.default_rng([seed, 3, i]), contacts)
        chunk._emails = contacts["email"].to_numpy()
        web = chunk.web_events()
        email = chunk.email_events()
        extra_orders, extra_items, extra_email = chunk.targeted(
            np.random.default_rng([seed, 4, i]))
        orders = pd.concat([orders, extra_orders], ignore_index=True)
        items = pd.concat([items, extra_items], ignore_index=True)
        email = pd.concat([email, extra_email], ignore_index=True)
        if dirty_rate > 0:
            dirt = _Dirt(np.random.default_rng([seed, 2, i]), dirty_rate, anchor)
            contacts, web = dirt.contacts(contacts), dirt.web_events(web)
            orders, items = dirt.orders(orders), dirt.order_items(items)
            email = dirt.email_events(email)
            attributes = dirt.attributes(attributes)  # last: the other tables' dirt is unchanged
            dirt_total.update(dirt.counts)
        sink.write("crm_contacts", contacts)
        sink.write("crm_contact_attributes", attributes)
        sink.write("orders", orders)
        sink.write("order_items", items)
        sink.write("web_events", web)
        sink.write("email_events", email)
        if progress:
            progress(i + 1, n_chunks)
    dirt_nested: dict[str, dict[str, int]] = {}
    for (table, reason), count in sorted(dirt_total.items()):
        dirt_nested.setdefault(table, {})[reason] = count
    manifest = {
        "seed": seed,
        "customers": customers,
        "as_of": as_of.isoformat(),
        "dirty_rate": dirty_rate,
        "rows": dict(sink.rows),
        "dirt": dirt_nested,
    }
    (out_dir / "dirt_manifest.json").write_text(json.dumps(manifest, indent=2))
    return GenerateResult(out_dir=out_dir, rows=dict(sink.rows), dirt=dirt_nested)
