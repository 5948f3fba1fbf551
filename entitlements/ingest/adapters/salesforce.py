"""Salesforce CRM exports (family "salesforce"): CSV files whose headers are API field names.

As Data Loader and the weekly Data Export write them: one file per object (Account.csv, ...).
docs/ingest.md, section Salesforce, has the field -> column tables and the reasons; in short:

- Ids: every id field is normalised to the 18-character case-safe form (sf_id18), so the 15- and
  18-character ids of one record are one id; empty is NULL; ids of other lengths stay as written.
- Dates are YYYY-MM-DD; datetimes ISO 8601 with Z or an offset (+0000, +02:00) and land in UTC.
- Salesforce's EndDate is the last day covered; our end dates are exclusive ([start, end)), so
  every EndDate of a date field lands one day later.
- What Salesforce has no standard field for comes from documented custom fields (Contract_Type__c,
  Auto_Renew__c, Renewal_Of__c (else ParentServiceContractId), Contract_Status__c, Original_Line__c,
  Line_Version__c, Change_Reason__c, Annual_Price__c, Location__c, Billing_Type__c, Response_Hours__c,
  After_Hours__c), each with a default when absent.
- Products (ContractLineItem.Product2Id) and services (Case.Type, WorkOrder.WorkTypeId) are
  translated by the mapping file, kinds ``product`` and ``service``.
"""

from __future__ import annotations

from entitlements.ingest.layouts import LAYOUTS_BY_TABLE
from entitlements.ingest.shapes import Lookup, Shape

FAMILY = "salesforce"
FORMATS = ("csv", "parquet")

MACROS: tuple[str, ...] = (
    # 1 when a character is an upper-case ASCII letter (the bits of the case-safe suffix).
    """CREATE OR REPLACE TEMP MACRO sf_upper_bit(c) AS (
        CASE WHEN ascii(c) BETWEEN 65 AND 90 THEN 1 ELSE 0 END)""",
    # The suffix character for the k-th block of 5 characters: the block's upper-case letters as
    # bits (first character = lowest bit) indexing A-Z0-5.
    """CREATE OR REPLACE TEMP MACRO sf_id_suffix(id, k) AS (substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ012345',
        1 + sf_upper_bit(substr(id, 5 * k + 1, 1)) + 2 * sf_upper_bit(substr(id, 5 * k + 2, 1))
        + 4 * sf_upper_bit(substr(id, 5 * k + 3, 1)) + 8 * sf_upper_bit(substr(id, 5 * k + 4, 1))
        + 16 * sf_upper_bit(substr(id, 5 * k + 5, 1)), 1))""",
    # A record id in its 18-character form: a 15-character id gets its 3-character suffix, an
    # 18-character one stays as is, empty is NULL; anything else (a non-Salesforce id, e.g. a
    # canonical location id) stays as written, so joins with canonical files still work.
    """CREATE OR REPLACE TEMP MACRO sf_id18(id) AS (CASE
        WHEN nullif(trim(id), '') IS NULL THEN NULL
        WHEN length(trim(id)) = 15 THEN trim(id) || sf_id_suffix(trim(id), 0)
            || sf_id_suffix(trim(id), 1) || sf_id_suffix(trim(id), 2)
        ELSE trim(id) END)""",
    # Date fields: exactly YYYY-MM-DD, as Salesforce writes them (a time part would be cut silently).
    r"""CREATE OR REPLACE TEMP MACRO sf_date(t) AS (CASE
        WHEN regexp_full_match(trim(t), '\d{4}-\d{2}-\d{2}') THEN TRY_CAST(trim(t) AS DATE) END)""",
    # Datetime fields: ISO 8601 with Z or an offset (+0000, +02:00) -> UTC; no offset is UTC.
    """CREATE OR REPLACE TEMP MACRO sf_datetime(t) AS (
        CAST(TRY_CAST(trim(t) AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP))""",
    # Checkboxes: true/false (Data Loader, Data Export) or 1/0 (reports); anything else unreadable.
    """CREATE OR REPLACE TEMP MACRO sf_bool(t) AS (CASE lower(trim(t))
        WHEN 'true' THEN true WHEN '1' THEN true WHEN 'false' THEN false WHEN '0' THEN false END)""",
    # Whole numbers, also as a number field writes them ("2.0"); 2.5 is unreadable, not rounded.
    r"""CREATE OR REPLACE TEMP MACRO sf_int(t) AS (CASE
        WHEN regexp_full_match(trim(t), '-?\d{1,9}(\.0*)?')
            THEN CAST(CAST(trim(t) AS DECIMAL(18, 4)) AS INTEGER) END)""",
    # A picklist value as one of our codes: "Customer Pay" -> customer_pay, "In Progress" -> in_progress.
    r"""CREATE OR REPLACE TEMP MACRO sf_code(t) AS (
        nullif(lower(regexp_replace(trim(t), '[\s-]+', '_', 'g')), ''))""",
)

DATE = "sf_date({})"
END_DATE = "sf_date({}) + 1"  # Salesforce's last day covered -> our exclusive end
DATETIME = "sf_datetime({})"
DATE_OF_DATETIME = "CAST(sf_datetime({}) AS DATE)"
BOOLEAN = "sf_bool({})"
INTEGER = "sf_int({})"


def _id(field: str) -> str:
    return f'sf_id18("{field}")'


def _fields(*names: str) -> dict[str, str]:
    return dict.fromkeys(names, "VARCHAR")


def _names(api_name: str) -> tuple[str, ...]:
    """Account.csv, Account_2024-06.csv, Account-1.csv, and any file in a folder named Account."""
    return (api_name, f"{api_name}_*", f"{api_name}-*", f"{api_name}/*", f"*/{api_name}/*")


# Service deliveries without a Billing_Type__c: a case or work order linked to an entitlement or a
# service contract was delivered under it (covered); one linked to neither is customer-pay.
BILLING_TYPE = """coalesce(sf_code("Billing_Type__c"), CASE
    WHEN nullif(trim("EntitlementId"), '') IS NOT NULL OR nullif(trim("ServiceContractId"), '') IS NOT NULL
    THEN 'covered' ELSE 'customer_pay' END)"""

ACCOUNT = Shape(
    name="salesforce.Account",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_accounts"],
    names=_names("Account"),
    formats=FORMATS,
    signature=("Id", "Name", "CurrencyIsoCode", "CreatedDate"),
    fields=_fields(
        "Id",
        "Name",
        "BillingCountryCode",
        "BillingCountry",
        "CurrencyIsoCode",
        "Type",
        "Industry",
        "CreatedDate",
    ),
    columns={
        "customer_id": _id("Id"),
        "customer_name": 'trim("Name")',
        # The ISO code where State and Country Picklists are on, else the free-text country.
        "country": 'coalesce(nullif(trim("BillingCountryCode"), \'\'), trim("BillingCountry"))',
        "currency": 'upper(trim("CurrencyIsoCode"))',
        "segment": 'coalesce(nullif(trim("Type"), \'\'), trim("Industry"))',
        "created_date": '"CreatedDate"',
    },
    parse={"created_date": DATE_OF_DATETIME},
    setup=MACROS,
    description="Salesforce Account",
)

# Salesforce's Status is derived from the dates: Inactive = not started yet, which our model
# calls active (dates decide coverage). Draft and cancelled only exist as Contract_Status__c.
CONTRACT_STATUS = """coalesce(sf_code("Contract_Status__c"), CASE sf_code("Status")
    WHEN 'inactive' THEN 'active' ELSE sf_code("Status") END)"""


def renewal_of(link_field: str) -> str:
    """The contract this one renews: Renewal_Of__c where the org keeps it, else the link field
    (entitlements.yml crm.renewal_link_field; default the standard ParentServiceContractId, which
    orgs set on a renewal to point at the contract it continues)."""
    return f'sf_id18(coalesce(nullif(trim("Renewal_Of__c"), \'\'), "{link_field}"))'


# EndDate, else the last day of Term months from StartDate (Salesforce computes EndDate so when a
# Term is set; an export may carry the Term alone). Neither: open-ended (an evergreen contract). An
# unreadable Term is passed on, to be rejected as the end date it should give.
CONTRACT_END = """coalesce(nullif(trim("EndDate"), ''), CAST(CAST(
    sf_date("StartDate") + to_months(sf_int("Term")) - INTERVAL 1 DAY AS DATE) AS VARCHAR),
    nullif(trim("Term"), ''))"""

SERVICE_CONTRACT = Shape(
    name="salesforce.ServiceContract",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_service_contracts"],
    names=_names("ServiceContract"),
    formats=FORMATS,
    signature=("Id", "AccountId", "StartDate", "EndDate", "Status", "CurrencyIsoCode"),
    fields=_fields(
        "Id",
        "AccountId",
        "StartDate",
        "EndDate",
        "Status",
        "CurrencyIsoCode",
        "Contract_Type__c",
        "Contract_Status__c",
        "Auto_Renew__c",
        "Renewal_Of__c",
        "ParentServiceContractId",
        "Name",
        "ContractNumber",
        "Term",
    ),
    columns={
        "contract_id": _id("Id"),
        "customer_id": _id("AccountId"),
        "contract_type": "coalesce(sf_code(\"Contract_Type__c\"), 'service_contract')",
        "status": CONTRACT_STATUS,
        "start_date": '"StartDate"',
        "end_date": CONTRACT_END,
        "currency": 'upper(trim("CurrencyIsoCode"))',
        "auto_renew": '"Auto_Renew__c"',
        "renewal_of_contract_id": renewal_of("ParentServiceContractId"),
        # What the customer and finance call the contract (statements, reports), beside its id.
        "contract_name": "nullif(trim(\"Name\"), '')",
        "contract_number": "nullif(trim(\"ContractNumber\"), '')",
    },
    parse={"start_date": DATE, "end_date": END_DATE, "auto_renew": BOOLEAN},
    setup=MACROS,
    description="Salesforce ServiceContract",
)

# The line's term in years: whole months where the dates fall on the same day of the month
# (2025-03-01 .. 2027-02-28 is 24 months), else days / 365.
TERM_YEARS = """CASE
    WHEN day(sf_date("StartDate")) = day(sf_date("EndDate") + 1)
        THEN date_diff('month', sf_date("StartDate"), sf_date("EndDate") + 1) / 12.0
    ELSE date_diff('day', sf_date("StartDate"), sf_date("EndDate") + 1) / 365.0 END"""


def annual_price(line_price: str = "per_term") -> str:
    """Our annual price is per unit and year. Annual_Price__c when the org keeps it; else the sales
    price less the line's discount, else TotalPrice / Quantity. entitlements.yml
    crm.contract_line_price says what that price is for: per_term (the default), the line's whole
    term, so it is divided by the term in years (a 24-month line at 48,000 is 24,000 a year);
    annual: a year; monthly: a month (x 12). A line without dates of its own (an evergreen
    contract's, or one taking its contract's dates) has no term to divide by here, so per_term
    reads its price as a year's (docs/ingest.md). A non-numeric UnitPrice is passed on to be
    rejected."""
    unit = """CASE
        WHEN nullif(trim("UnitPrice"), '') IS NOT NULL
            AND coalesce(TRY_CAST("Discount" AS DECIMAL(9, 4)), 0) = 0 THEN "UnitPrice"
        WHEN nullif(trim("UnitPrice"), '') IS NOT NULL THEN CAST(round(TRY_CAST("UnitPrice" AS DECIMAL(18, 4))
            * (1 - TRY_CAST("Discount" AS DECIMAL(9, 4)) / 100), 2) AS VARCHAR)
        ELSE CAST(round(TRY_CAST("TotalPrice" AS DECIMAL(18, 4))
            / nullif(TRY_CAST("Quantity" AS DECIMAL(18, 4)), 0), 2) AS VARCHAR)
        END"""
    scaled = ""
    if line_price == "per_term":
        scaled = f"""WHEN TRY_CAST(({unit}) AS DECIMAL(18, 4)) IS NOT NULL
            AND sf_date("StartDate") IS NOT NULL AND sf_date("EndDate") IS NOT NULL
        THEN CAST(round(TRY_CAST(({unit}) AS DECIMAL(18, 4)) / nullif({TERM_YEARS}, 0), 2) AS VARCHAR)"""
    elif line_price == "monthly":
        scaled = f"""WHEN TRY_CAST(({unit}) AS DECIMAL(18, 4)) IS NOT NULL
        THEN CAST(round(TRY_CAST(({unit}) AS DECIMAL(18, 4)) * 12, 2) AS VARCHAR)"""
    return f"""CASE
    WHEN nullif(trim("Annual_Price__c"), '') IS NOT NULL THEN "Annual_Price__c"
    {scaled}
    ELSE ({unit}) END"""


ANNUAL_PRICE = annual_price()

CONTRACT_LINE_ITEM = Shape(
    name="salesforce.ContractLineItem",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_contract_lines"],
    names=_names("ContractLineItem"),
    formats=FORMATS,
    signature=("Id", "ServiceContractId", "Product2Id", "Quantity", "StartDate", "EndDate"),
    fields=_fields(
        "Id",
        "ServiceContractId",
        "Product2Id",
        "AssetId",
        "LocationId",
        "Quantity",
        "UnitPrice",
        "Discount",
        "TotalPrice",
        "StartDate",
        "EndDate",
        "Original_Line__c",
        "Line_Version__c",
        "Change_Reason__c",
        "Annual_Price__c",
    ),
    columns={
        # Versions of one line are separate records; Original_Line__c points at the first one.
        "contract_line_id": 'sf_id18(coalesce(nullif(trim("Original_Line__c"), \'\'), "Id"))',
        "version_no": "coalesce(nullif(trim(\"Line_Version__c\"), ''), '1')",
        "contract_id": _id("ServiceContractId"),
        "package_code": Lookup("product", _id("Product2Id")),
        "asset_id": _id("AssetId"),
        "location_id": _id("LocationId"),
        "quantity": '"Quantity"',
        "annual_price": ANNUAL_PRICE,
        "valid_from": '"StartDate"',
        "valid_to": '"EndDate"',
        "change_reason": 'sf_code("Change_Reason__c")',
    },
    parse={"version_no": INTEGER, "valid_from": DATE, "valid_to": END_DATE},
    setup=MACROS,
    description="Salesforce ContractLineItem",
)

ENTITLEMENT = Shape(
    name="salesforce.Entitlement",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_entitlements"],
    names=_names("Entitlement"),
    formats=FORMATS,
    signature=("Id", "AccountId"),
    fields=_fields(
        "Id",
        "AccountId",
        "ServiceContractId",
        "ContractLineItemId",
        "AssetId",
        "Name",
        "Type",
        "StartDate",
        "EndDate",
        "IsPerIncident",
        "CasesPerEntitlement",
        "RemainingCases",
        "Status",
    ),
    columns={
        "entitlement_id": _id("Id"),
        "customer_id": _id("AccountId"),
        "contract_id": _id("ServiceContractId"),
        "contract_line_id": _id("ContractLineItemId"),
        "asset_id": _id("AssetId"),
        "entitlement_name": 'trim("Name")',
        "entitlement_type": 'trim("Type")',
        "start_date": '"StartDate"',
        "end_date": '"EndDate"',
        "is_per_incident": '"IsPerIncident"',
        "cases_per_entitlement": '"CasesPerEntitlement"',
        "remaining_cases": '"RemainingCases"',
        "status": 'sf_code("Status")',
        # An entitlement of its own (no contract line) grants a package: its Type (else its Name)
        # through the mapping. One of a contract line looks nothing up: the line grants.
        "package_code": Lookup(
            "entitlement",
            """CASE WHEN nullif(trim("ContractLineItemId"), '') IS NULL
                THEN coalesce(nullif(trim("Type"), ''), trim("Name")) END""",
        ),
    },
    parse={
        "start_date": DATE,
        "end_date": END_DATE,
        "is_per_incident": BOOLEAN,
        "cases_per_entitlement": INTEGER,
        "remaining_cases": INTEGER,
    },
    setup=MACROS,
    description="Salesforce Entitlement",
)

ASSET = Shape(
    name="salesforce.Asset",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_assets"],
    names=_names("Asset"),
    formats=FORMATS,
    signature=("Id", "AccountId"),
    fields=_fields("Id", "AccountId", "LocationId", "ProductCode", "SerialNumber", "InstallDate"),
    columns={
        "asset_id": _id("Id"),
        "customer_id": _id("AccountId"),
        "location_id": _id("LocationId"),
        "product_code": 'trim("ProductCode")',
        "serial_number": 'trim("SerialNumber")',
        "installed_date": '"InstallDate"',
    },
    parse={"installed_date": DATE},
    setup=MACROS,
    description="Salesforce Asset",
)

# IsClosed is authoritative where exported: any open status but New is being worked on (custom
# statuses such as "Waiting on Customer" included). Without it, the standard picklist values.
CASE_STATUS = """CASE
    WHEN sf_bool("IsClosed") THEN 'closed'
    WHEN sf_bool("IsClosed") = false THEN CASE WHEN sf_code("Status") = 'new' THEN 'new' ELSE 'working' END
    WHEN sf_code("Status") IN ('escalated', 'on_hold', 'in_progress') THEN 'working'
    ELSE sf_code("Status") END"""

CASE = Shape(
    name="salesforce.Case",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_cases"],
    names=_names("Case"),
    formats=FORMATS,
    signature=("Id", "AccountId", "Type", "CreatedDate", "Status"),
    fields=_fields(
        "Id",
        "CaseNumber",
        "AccountId",
        "AssetId",
        "Location__c",
        "Type",
        "CreatedDate",
        "ClosedDate",
        "Priority",
        "Status",
        "IsClosed",
        "EntitlementId",
        "ServiceContractId",
        "Response_Hours__c",
        "After_Hours__c",
        "Billing_Type__c",
    ),
    columns={
        "case_id": _id("Id"),
        "case_number": 'trim("CaseNumber")',
        "customer_id": _id("AccountId"),
        "asset_id": _id("AssetId"),
        "location_id": _id("Location__c"),
        "service_code": Lookup("service", 'trim("Type")'),
        "created_at": '"CreatedDate"',
        "closed_at": '"ClosedDate"',
        "priority": 'trim("Priority")',
        "status": CASE_STATUS,
        "response_hours": '"Response_Hours__c"',
        "after_hours": '"After_Hours__c"',
        "billing_type": BILLING_TYPE,
    },
    parse={"created_at": DATETIME, "closed_at": DATETIME, "after_hours": BOOLEAN},
    setup=MACROS,
    description="Salesforce Case",
)

# StatusCategory (API 44.0+) groups custom statuses; Status where it is not exported. Cannot
# Complete: nothing was delivered, like a cancelled visit.
WORK_ORDER_STATUS_VALUE = """coalesce(sf_code("StatusCategory"), sf_code("Status"))"""
WORK_ORDER_STATUS = f"""CASE {WORK_ORDER_STATUS_VALUE}
    WHEN 'new' THEN 'scheduled'
    WHEN 'in_progress' THEN 'in_progress' WHEN 'inprogress' THEN 'in_progress'
    WHEN 'on_hold' THEN 'in_progress' WHEN 'onhold' THEN 'in_progress'
    WHEN 'completed' THEN 'completed' WHEN 'closed' THEN 'completed'
    WHEN 'canceled' THEN 'cancelled' WHEN 'cancelled' THEN 'cancelled'
    WHEN 'cannot_complete' THEN 'cancelled' WHEN 'cannotcomplete' THEN 'cancelled'
    ELSE {WORK_ORDER_STATUS_VALUE} END"""

WORK_ORDER = Shape(
    name="salesforce.WorkOrder",
    family=FAMILY,
    layout=LAYOUTS_BY_TABLE["crm_work_orders"],
    names=_names("WorkOrder"),
    formats=FORMATS,
    signature=("Id", "AccountId", "WorkTypeId", "CreatedDate", "Status"),
    fields=_fields(
        "Id",
        "AccountId",
        "AssetId",
        "LocationId",
        "WorkTypeId",
        "CreatedDate",
        "EndDate",
        "Status",
        "StatusCategory",
        "EntitlementId",
        "ServiceContractId",
        "Response_Hours__c",
        "After_Hours__c",
        "Billing_Type__c",
    ),
    columns={
        "work_order_id": _id("Id"),
        "customer_id": _id("AccountId"),
        "asset_id": _id("AssetId"),
        "location_id": _id("LocationId"),
        "service_code": Lookup("service", _id("WorkTypeId")),
        "created_at": '"CreatedDate"',
        # EndDate is when the work was finished only once it is; before, it is a plan.
        "completed_at": f"CASE WHEN ({WORK_ORDER_STATUS}) = 'completed' THEN \"EndDate\" END",
        "status": WORK_ORDER_STATUS,
        "response_hours": '"Response_Hours__c"',
        "after_hours": '"After_Hours__c"',
        "billing_type": BILLING_TYPE,
    },
    parse={"created_at": DATETIME, "completed_at": DATETIME, "after_hours": BOOLEAN},
    setup=MACROS,
    description="Salesforce WorkOrder",
)

SHAPES: tuple[Shape, ...] = (
    ACCOUNT,
    SERVICE_CONTRACT,
    CONTRACT_LINE_ITEM,
    ENTITLEMENT,
    ASSET,
    CASE,
    WORK_ORDER,
)
