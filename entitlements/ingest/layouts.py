"""The export layouts the warehouse accepts: one per raw table.

This module is the contract between the source systems' exports and the
warehouse. Each layout names the file pattern inside an export directory, the
raw table it lands in (schema ``raw``), its columns with DuckDB types, which of
them are required, and the primary key. The ingest step, the landing checks
(expectations/) and the dbt sources all read from here, so a column is declared
once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import PurePosixPath

from entitlements.ingest.currencies import CURRENCIES  # ISO 4217: docs/currencies.md


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class Layout:
    table: str  # raw table name, e.g. "crm_accounts"
    system: str  # source system: crm, billing or usage
    pattern: str  # glob relative to the export directory
    file_format: str  # "csv" or "jsonl"
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # Values a column may take (landing check); empty: no restriction.
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # (start, end) column pairs where end must be on or after start.
    date_ranges: tuple[tuple[str, str], ...] = ()
    # Columns that must not be negative.
    non_negative: tuple[str, ...] = ()
    # Whether the primary key must be unique within a file. Usage events are
    # delivered at least once, so duplicates are expected and removed in staging.
    unique_key: bool = True
    # Key columns that may be empty (a price for every package has no package_code).
    nullable_key: tuple[str, ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


def _cols(spec: str) -> tuple[Column, ...]:
    """Parse 'name type[?], ...' where a trailing '?' marks an optional column."""
    out = []
    for item in re.split(r",(?![^(]*\))", spec):  # commas inside DECIMAL(p,s) do not separate
        name, type_ = item.split()
        optional = type_.endswith("?")
        out.append(Column(name, type_.rstrip("?"), required=not optional))
    return tuple(out)


def _text(names: str) -> tuple[Column, ...]:
    """Columns landed as the text they are, none required: a legacy export lands exactly as written."""
    return tuple(Column(name, "VARCHAR", required=False) for name in names.split())


# How a price turns a quantity into an amount (docs/pricing.md).
CHARGE_MODELS = ("per_unit", "package", "graduated", "volume", "flat")

LAYOUTS: tuple[Layout, ...] = (
    Layout(
        table="crm_accounts",
        system="crm",
        pattern="crm/accounts*.csv",
        file_format="csv",
        columns=_cols(
            "customer_id VARCHAR, customer_name VARCHAR, country VARCHAR, currency VARCHAR,"
            " segment VARCHAR?, created_date DATE"
        ),
        primary_key=("customer_id",),
        enums={"currency": CURRENCIES},
    ),
    Layout(
        table="crm_locations",
        system="crm",
        pattern="crm/locations*.csv",
        file_format="csv",
        columns=_cols("location_id VARCHAR, customer_id VARCHAR, location_name VARCHAR?, country VARCHAR?"),
        primary_key=("location_id",),
    ),
    Layout(
        table="crm_assets",
        system="crm",
        pattern="crm/assets*.csv",
        file_format="csv",
        columns=_cols(
            "asset_id VARCHAR, customer_id VARCHAR, location_id VARCHAR?, product_code VARCHAR?,"
            " serial_number VARCHAR?, installed_date DATE?"
        ),
        primary_key=("asset_id",),
    ),
    Layout(
        table="crm_catalog",
        system="crm",
        pattern="crm/catalog*.csv",
        file_format="csv",
        columns=_cols(
            "node_code VARCHAR, parent_code VARCHAR?, node_level VARCHAR, node_name VARCHAR,"
            " entitlement_code VARCHAR?, entitlement_type VARCHAR?, unit VARCHAR?,"
            " limit_quantity DECIMAL(18,4)?, limit_period VARCHAR?, consumed_by VARCHAR?,"
            " sla_response_hours DECIMAL(9,2)?, coverage_hours VARCHAR?, resets BOOLEAN?"
        ),
        primary_key=("node_code",),
        enums={
            "node_level": ("package", "group", "entitlement"),
            "entitlement_type": ("product", "service", "feature", "time_based"),
            "limit_period": ("month", "year", "term"),
            "consumed_by": ("service", "usage", "none"),
            "coverage_hours": ("business_hours", "24x7"),
        },
        non_negative=("limit_quantity", "sla_response_hours"),
    ),
    Layout(
        table="crm_service_contracts",
        system="crm",
        pattern="crm/service_contracts*.csv",
        file_format="csv",
        columns=_cols(
            "contract_id VARCHAR, customer_id VARCHAR, contract_type VARCHAR, status VARCHAR,"
            " start_date DATE, end_date DATE?, currency VARCHAR, auto_renew BOOLEAN?,"
            " renewal_of_contract_id VARCHAR?, contract_name VARCHAR?, contract_number VARCHAR?"
        ),
        primary_key=("contract_id",),
        enums={
            "contract_type": ("service_contract", "subscription", "warranty"),
            "status": ("active", "expired", "cancelled", "draft"),
            "currency": CURRENCIES,
        },
        date_ranges=(("start_date", "end_date"),),
    ),
    Layout(
        table="crm_contract_lines",
        system="crm",
        pattern="crm/contract_lines*.csv",
        file_format="csv",
        columns=_cols(
            "contract_line_id VARCHAR, version_no INTEGER, contract_id VARCHAR, package_code VARCHAR,"
            " asset_id VARCHAR?, location_id VARCHAR?, quantity DECIMAL(18,4), annual_price DECIMAL(18,2),"
            " valid_from DATE?, valid_to DATE?, change_reason VARCHAR?"
        ),
        primary_key=("contract_line_id", "version_no"),
        enums={"change_reason": ("granted", "amended", "renewed", "cancelled")},
        date_ranges=(("valid_from", "valid_to"),),
        non_negative=("quantity", "annual_price", "version_no"),
    ),
    Layout(
        table="crm_cases",
        system="crm",
        pattern="crm/cases*.csv",
        file_format="csv",
        columns=_cols(
            "case_id VARCHAR, customer_id VARCHAR, asset_id VARCHAR?, location_id VARCHAR?,"
            " service_code VARCHAR, created_at TIMESTAMP, closed_at TIMESTAMP?, priority VARCHAR?,"
            " status VARCHAR, response_hours DECIMAL(9,2)?, after_hours BOOLEAN?, billing_type VARCHAR,"
            # The number people quote (Salesforce CaseNumber): invoices may name a case by it.
            " case_number VARCHAR?"
        ),
        primary_key=("case_id",),
        enums={
            "status": ("new", "working", "closed"),
            "billing_type": ("covered", "customer_pay"),
        },
        date_ranges=(("created_at", "closed_at"),),
        non_negative=("response_hours",),
    ),
    Layout(
        table="crm_work_orders",
        system="crm",
        pattern="crm/work_orders*.csv",
        file_format="csv",
        columns=_cols(
            "work_order_id VARCHAR, customer_id VARCHAR, asset_id VARCHAR?, location_id VARCHAR?,"
            " service_code VARCHAR, created_at TIMESTAMP, completed_at TIMESTAMP?, status VARCHAR,"
            " response_hours DECIMAL(9,2)?, after_hours BOOLEAN?, billing_type VARCHAR"
        ),
        primary_key=("work_order_id",),
        enums={
            "status": ("scheduled", "in_progress", "completed", "cancelled"),
            "billing_type": ("covered", "customer_pay"),
        },
        date_ranges=(("created_at", "completed_at"),),
        non_negative=("response_hours",),
    ),
    Layout(
        table="crm_overrides",
        system="crm",
        pattern="crm/overrides*.csv",
        file_format="csv",
        columns=_cols(
            "override_id VARCHAR, customer_id VARCHAR, contract_id VARCHAR?, entitlement_code VARCHAR,"
            " extra_quantity DECIMAL(18,4), valid_from DATE, valid_to DATE, reason VARCHAR?,"
            " approved_by VARCHAR?, approved_at TIMESTAMP?"
        ),
        primary_key=("override_id",),
        date_ranges=(("valid_from", "valid_to"),),
        non_negative=("extra_quantity",),
    ),
    # CRM entitlement records (Salesforce Entitlement). One of a contract line is that line's record,
    # landed so nothing is lost (the line grants); one of its own grants its package_code
    # (int_entitlement_grants).
    Layout(
        table="crm_entitlements",
        system="crm",
        pattern="crm/entitlements*.csv",
        file_format="csv",
        columns=_cols(
            "entitlement_id VARCHAR, customer_id VARCHAR, contract_id VARCHAR?, contract_line_id VARCHAR?,"
            " asset_id VARCHAR?, entitlement_name VARCHAR?, entitlement_type VARCHAR?, start_date DATE?,"
            " end_date DATE?, is_per_incident BOOLEAN?, cases_per_entitlement INTEGER?,"
            " remaining_cases INTEGER?, status VARCHAR?,"
            # The package it grants, for a record of its own (no contract line): Salesforce's Type
            # through the mapping (kind entitlement).
            " package_code VARCHAR?"
        ),
        primary_key=("entitlement_id",),
        enums={"status": ("active", "expired", "inactive")},
        date_ranges=(("start_date", "end_date"),),
        non_negative=("cases_per_entitlement",),
    ),
    Layout(
        table="billing_price_book",
        system="billing",
        pattern="billing/price_book*.csv",
        file_format="csv",
        # One row per price, or per tier of a tiered price (docs/pricing.md; entitlements/ingest/price_book.py
        # checks the file whole). Only the first four columns are required: a price with nothing
        # else is a per-unit price for every package, in force since always.
        columns=_cols(
            "item_code VARCHAR, currency VARCHAR, price_type VARCHAR, unit_amount DECIMAL(18,6),"
            " package_code VARCHAR?, charge_model VARCHAR?, valid_from DATE?, tier_up_to DECIMAL(18,4)?,"
            " flat_amount DECIMAL(18,6)?, package_size DECIMAL(18,4)?, rounding VARCHAR?,"
            " free_units DECIMAL(18,4)?"
        ),
        primary_key=("item_code", "currency", "price_type", "package_code", "valid_from", "tier_up_to"),
        nullable_key=("package_code", "valid_from", "tier_up_to"),
        enums={
            "currency": CURRENCIES,
            "price_type": ("annual_fee", "unit", "premium_surcharge"),
            "charge_model": CHARGE_MODELS,
            "rounding": ("up", "down"),
        },
        non_negative=("unit_amount", "tier_up_to", "flat_amount", "package_size", "free_units"),
    ),
    Layout(
        table="billing_invoices",
        system="billing",
        pattern="billing/invoices*.csv",
        file_format="csv",
        columns=_cols(
            "invoice_id VARCHAR, customer_id VARCHAR, invoice_date DATE, currency VARCHAR, status VARCHAR"
        ),
        primary_key=("invoice_id",),
        enums={"currency": CURRENCIES, "status": ("draft", "open", "paid", "void")},
    ),
    Layout(
        table="billing_invoice_lines",
        system="billing",
        pattern="billing/invoice_lines*.csv",
        file_format="csv",
        columns=_cols(
            "invoice_line_id VARCHAR, invoice_id VARCHAR, line_type VARCHAR, contract_id VARCHAR?,"
            " contract_line_id VARCHAR?, item_code VARCHAR, reference_id VARCHAR?, period_start DATE,"
            " period_end DATE, quantity DECIMAL(18,4), amount DECIMAL(18,2), currency VARCHAR,"
            # How reference_id was found (entitlements.yml evidence): metadata_key:<key> or
            # description_pattern; empty for a canonical file, whose reference_id is a column.
            " reference_matched_by VARCHAR?,"
            # The billing subscription item the line bills (Stripe parent.subscription_item_details):
            # matches an overage line to the usage of the allowance that item grants.
            " subscription_item_id VARCHAR?,"
            # What the line's discounts took off its amount (Stripe discount_amounts), >= 0; and
            # whether it is a proration (a credit for unused time, or a charge for the rest of a
            # period after a change). A negative amount is a credit.
            " discount_amount DECIMAL(18,2)?, is_proration BOOLEAN?"
        ),
        primary_key=("invoice_line_id",),
        enums={
            "line_type": ("subscription", "service", "premium", "overage"),
            "currency": CURRENCIES,
        },
        date_ranges=(("period_start", "period_end"),),
        non_negative=("quantity", "discount_amount"),
    ),
    # Credit notes, one row per credit note line: what was credited back on an invoice after it
    # was finalised (Stripe credit notes). amount is the credit net of the line's discounts.
    # invoice_line_id names the invoice line it credits; empty for a custom line (credited on the
    # invoice as a whole, not on any one line).
    Layout(
        table="billing_credit_note_lines",
        system="billing",
        pattern="billing/credit_note_lines*.csv",
        file_format="csv",
        columns=_cols(
            "credit_note_line_id VARCHAR, credit_note_id VARCHAR, invoice_id VARCHAR,"
            " invoice_line_id VARCHAR?, credited_on DATE, status VARCHAR, reason VARCHAR?,"
            " amount DECIMAL(18,2), currency VARCHAR"
        ),
        primary_key=("credit_note_line_id",),
        enums={"status": ("issued", "void"), "currency": CURRENCIES},
        non_negative=("amount",),
    ),
    # The billing system's own customer records (Stripe customers): customer_ref is the billing
    # system's id, customer_id the CRM account it maps to (mapping kind "customer", or the metadata
    # key entitlements.yml names). A customer no CRM account is known for lands without one and is
    # listed by fct_unresolved_customer_ids, never dropped.
    Layout(
        table="billing_customers",
        system="billing",
        pattern="billing/customers*.csv",
        file_format="csv",
        columns=_cols(
            "customer_ref VARCHAR, customer_id VARCHAR?, name VARCHAR?, email VARCHAR?, currency VARCHAR?,"
            " created_at TIMESTAMP?"
        ),
        primary_key=("customer_ref",),
        enums={"currency": CURRENCIES},
    ),
    # Billing subscriptions, one row per subscription item (price and quantity) with its current
    # period. quantity is optional: items on metered prices have none.
    Layout(
        table="billing_subscriptions",
        system="billing",
        pattern="billing/subscriptions*.csv",
        file_format="csv",
        columns=_cols(
            "subscription_item_id VARCHAR, subscription_id VARCHAR, customer_id VARCHAR, price_id VARCHAR,"
            " item_code VARCHAR, quantity DECIMAL(18,4)?, status VARCHAR, current_period_start TIMESTAMP,"
            " current_period_end TIMESTAMP, cancel_at_period_end BOOLEAN?, created_at TIMESTAMP?,"
            # What the item grants, and when (int_entitlement_grants): a subscription naming a CRM
            # contract line (metadata contract_line_id) is that agreement, granted by the CRM line.
            " contract_line_id VARCHAR?, currency VARCHAR?, started_at TIMESTAMP?, ended_at TIMESTAMP?,"
            " cancel_at TIMESTAMP?"
        ),
        primary_key=("subscription_item_id",),
        enums={
            "status": (
                "incomplete",
                "incomplete_expired",
                "trialing",
                "active",
                "past_due",
                "canceled",
                "unpaid",
                "paused",
            ),
        },
        date_ranges=(("current_period_start", "current_period_end"),),
        non_negative=("quantity",),
    ),
    Layout(
        table="usage_events",
        system="usage",
        pattern="usage/*.jsonl",
        file_format="jsonl",
        columns=_cols(
            "event_id VARCHAR, customer_id VARCHAR, meter_code VARCHAR, quantity DECIMAL(18,4),"
            " occurred_at TIMESTAMP, sent_at TIMESTAMP?,"
            # What a unique_count meter counts once per period (a user id): entitlements.yml meters.
            " distinct_value VARCHAR?"
        ),
        primary_key=("event_id",),
        non_negative=("quantity",),
        unique_key=False,
    ),
    # The user's monthly exchange rates (docs/currencies.md): any landed rate replaces the shipped
    # illustrative seed fx_rates as a whole. A rate of 0 is a warning in dbt (stg_billing__fx_rates).
    Layout(
        table="billing_fx_rates",
        system="billing",
        pattern="billing/fx_rates*.csv",
        file_format="csv",
        columns=_cols("rate_month DATE, from_currency VARCHAR, to_currency VARCHAR, rate DECIMAL(18,8)"),
        primary_key=("rate_month", "from_currency", "to_currency"),
        enums={"from_currency": CURRENCIES, "to_currency": CURRENCIES},
        non_negative=("rate",),
    ),
)

# The legacy contract system a migration moves from (entitlements migrate, docs/migration.md). Its
# files land as they are: every column text, nothing required, duplicate keys kept, so the
# migration's extract checks judge the export exactly as the legacy system wrote it. Columns are
# the legacy header names in lower case (entitlements/ingest/adapters/legacy.py reads the upper-case headers).
LEGACY_ALLOWANCE_CODES = ("INCIDENT", "PHONE_SUPPORT", "ONSITE_VISIT", "API_CALLS", "DATA_GB")
LEGACY_LAYOUTS: tuple[Layout, ...] = (
    Layout(
        table="legacy_customers",
        system="legacy",
        pattern="legacy/CUSTMAST*.csv",
        file_format="csv",
        columns=_text("cust_no cust_name cntry curr_cd"),
        primary_key=("cust_no",),
        unique_key=False,
    ),
    Layout(
        table="legacy_contracts",
        system="legacy",
        pattern="legacy/CONTRACTS*.csv",
        file_format="csv",
        columns=_text(
            "contr_no seg_no cust_no contr_type status start_dt end_dt seg_from seg_to prod_cd"
            " equip_serial site_no qty fee_minor curr_cd auto_rnw prev_contr_no "
            + " ".join(f"alw_{code.lower()}" for code in LEGACY_ALLOWANCE_CODES)
        ),
        primary_key=("contr_no", "seg_no"),
        unique_key=False,
    ),
    Layout(
        table="legacy_crosswalk",
        system="legacy",
        pattern="legacy/XREF*.csv",
        file_format="csv",
        columns=_text("obj_type legacy_key new_key"),
        primary_key=("obj_type", "legacy_key"),
        unique_key=False,
    ),
    Layout(
        table="legacy_product_map",
        system="legacy",
        pattern="legacy/PRODMAP*.csv",
        file_format="csv",
        columns=_text("old_prod_cd new_package_cd descr"),
        primary_key=("old_prod_cd",),
        unique_key=False,
    ),
    Layout(
        table="legacy_control_totals",
        system="legacy",
        pattern="legacy/CONTROL*.csv",
        file_format="csv",
        columns=_text("file_name record_count hash_total extract_ts"),
        primary_key=("file_name",),
        unique_key=False,
    ),
)
EXPORT_LAYOUTS = LAYOUTS  # what an export of the CRM, billing and usage systems holds
LAYOUTS += LEGACY_LAYOUTS

LAYOUTS_BY_TABLE = {layout.table: layout for layout in LAYOUTS}


def layout_for(relative_path: str) -> Layout | None:
    """The layout whose pattern matches a path relative to the export directory."""
    path = PurePosixPath(relative_path).as_posix()
    for layout in LAYOUTS:
        if fnmatch(path, layout.pattern):
            return layout
    return None
