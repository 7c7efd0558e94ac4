"""Real public data sets mapped onto the raw tables.

Both are read from ``../shared/data`` (never copied into the repo). Their dirt is kept as
it is: staging decides what is valid and quarantines the rest with a reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from segwise.errors import ConfigurationError

DATASETS = ("cdnow", "online_retail")

# Online Retail's InvoiceDate is UK local time: staging converts it to UTC.
SOURCE_TIMEZONES = {"cdnow": "UTC", "online_retail": "Europe/London", "generated": "UTC"}


class DatasetNotFound(ConfigurationError, FileNotFoundError):
    pass


def _require(path: Path) -> Path:
    if not path.exists():
        raise DatasetNotFound(
            f"{path} not found: set SEGWISE_SHARED_DATA to the folder holding the shared data sets"
        )
    return path


def cdnow_frames(shared_data: Path) -> dict[str, pd.DataFrame]:
    """CDNOW master file: one transaction per line → one order (no line items).

    There is no order id: it is ``<customer_id>-<date>-<n>`` where n numbers a customer's
    transactions of that day in file order. Customer ids are kept as written ("00001").
    """
    path = _require(shared_data / "cdnow" / "CDNOW_master.txt")
    df = pd.read_csv(path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    n = df.groupby(["customer_id", "date"]).cumcount()
    order_id = df["customer_id"] + "-" + df["date"] + "-" + n.astype(str)
    ordered_at = pd.to_datetime(df["date"], format="%Y%m%d")
    orders = pd.DataFrame({
        "order_id": order_id,
        "customer_id": df["customer_id"],
        "ordered_at": ordered_at,
        "status": "completed",
        "currency": "USD",
        "order_total": df["dollar_value"].astype(float),
        "country": None,
    })
    products = pd.DataFrame({"product_id": ["CD"], "product_name": ["Compact disc"],
                             "category": ["music"], "list_price": [None]})
    contacts = _contacts_from_orders(orders)
    # CDNOW is transaction-level: no order lines (zero-dollar transactions are free CDs,
    # valid purchases — 68 customers have nothing else).
    return {"orders": orders, "products": products, "crm_contacts": contacts}


def _contacts_from_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """A CRM row per known customer (no email, no consent): first order = sign-up."""
    valid = orders[orders["customer_id"].notna()].sort_values("ordered_at")
    first = valid.groupby("customer_id", sort=True).agg(
        signup_at=("ordered_at", "min"), updated_at=("ordered_at", "max"),
        country=("country", "last"),
    ).reset_index()
    return pd.DataFrame({
        "customer_id": first["customer_id"],
        "email": None,
        "first_name": None,
        "last_name": None,
        "country": first["country"],
        "signup_at": first["signup_at"],
        "loyalty_tier": None,
        "email_consent": False,
        "email_consent_at": pd.NaT,
        "sms_consent": False,
        "sms_consent_at": pd.NaT,
        "updated_at": first["updated_at"],
    })


def online_retail_frames(shared_data: Path) -> dict[str, pd.DataFrame]:
    """UCI Online Retail: invoice → order, invoice line → order item, Country → contact.

    Lines get ``<InvoiceNo>-<line number>`` as id (the file has exact duplicate lines, which
    are separate lines of an invoice). Cancellations (InvoiceNo 'C…') become orders with
    status ``cancelled``; lines without a customer keep a null customer id.
    """
    path = _require(shared_data / "uci_online_retail" / "online_retail.parquet")
    df = pd.read_parquet(path)
    df["line_no"] = df.groupby("InvoiceNo").cumcount()
    cust = df["CustomerID"].map(lambda v: None if pd.isna(v) else str(int(v)))
    df["customer_id"] = cust
    df["amount"] = df["Quantity"] * df["UnitPrice"]
    inv = df.groupby("InvoiceNo", sort=False).agg(
        customer_id=("customer_id", "first"),
        ordered_at=("InvoiceDate", "min"),
        order_total=("amount", "sum"),
        country=("Country", "first"),
    ).reset_index()
    orders = pd.DataFrame({
        "order_id": inv["InvoiceNo"],
        "customer_id": inv["customer_id"],
        "ordered_at": inv["ordered_at"],
        "status": np.where(inv["InvoiceNo"].str.startswith("C"), "cancelled", "completed"),
        "currency": "GBP",
        "order_total": inv["order_total"].round(2),
        "country": inv["country"],
    })
    items = pd.DataFrame({
        "order_item_id": df["InvoiceNo"] + "-" + df["line_no"].astype(str),
        "order_id": df["InvoiceNo"],
        "product_id": df["StockCode"],
        "quantity": df["Quantity"].astype("int64"),
        "unit_price": df["UnitPrice"].astype(float),
    })
    products = (
        df.dropna(subset=["StockCode"]).groupby("StockCode", sort=True)
        .agg(product_name=("Description", "first"), list_price=("UnitPrice", "median"))
        .reset_index().rename(columns={"StockCode": "product_id"})
    )
    products["category"] = None
    contacts = _contacts_from_orders(orders[orders["status"] == "completed"])
    return {"orders": orders, "order_items": items, "products": products,
            "crm_contacts": contacts}


def dataset_frames(name: str, shared_data: Path) -> dict[str, pd.DataFrame]:
    if name == "cdnow":
        return cdnow_frames(shared_data)
    if name == "online_retail":
        return online_retail_frames(shared_data)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
