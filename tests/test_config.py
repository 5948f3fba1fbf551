"""The configuration file (entitlements.yml, docs/configuration.md) and `entitlements check-config`.

Fast: no dbt, no warehouse. Every problem a file has must name the file, the line and the key;
the line numbers below are counted by hand from the YAML texts (line 1 is the text's first line).
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from entitlements.cli import cli
from entitlements.config import (
    CONFIG_FILE,
    DEFAULT,
    ConfigError,
    describe,
    find_config,
    load_config,
)
from tests.conftest import entitlements

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"


def yml(text: str) -> str:
    """A YAML text written indented in a test: its first line is line 1."""
    return textwrap.dedent(text).lstrip("\n")


def doc_yaml_blocks() -> list[str]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert blocks, f"{DOC} has no ```yaml block"
    return blocks


def write(tmp_path: Path, text: str, name: str = CONFIG_FILE) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def check_config(path: Path):
    return CliRunner().invoke(cli, ["check-config", str(path)])


def find_problem(problems: list[str], line: int, key: str | None, fragment: str) -> str:
    """The problem on that line and key whose message holds the fragment (key None: a YAML error)."""
    prefix = f"line {line}, key {key}: " if key is not None else f"line {line}, "
    found = [p for p in problems if p.startswith(prefix) and fragment in p]
    assert found, f"no problem starting {prefix!r} with {fragment!r} in {problems}"
    return found[0]


# ------------------------------------------------------------------------- the documented example


def test_the_complete_example_in_the_docs_is_valid_and_read_as_documented(tmp_path: Path) -> None:
    path = write(tmp_path, doc_yaml_blocks()[0])

    result = check_config(path)
    assert result.exit_code == 0, result.output
    assert f"{path}: valid" in result.stdout
    for line in (
        "dbt var under_billed_tolerance_pct: 1",
        'dbt var reporting_currency: "USD"',
        "meter API_CALLS: events of type com.example.api.request (type); sum of data.request_count",
        "meter STORAGE_GB: events of type com.example.storage.snapshot (type); sum of data.gb",
        "usage events: id source | id, time time, customer data.customer (billing_customer)",
        "billing customer -> CRM account: metadata.salesforce_account_id",
        "customer-pay deliveries: Type in Paid Repair, Paid Phone Support;"
        " covered: Contract Support, Warranty Repair",
        "invoice line reference: metadata_key sf_case_id",
        r"invoice line reference: description_pattern Case (\d{8})",
        "renewal link: ParentServiceContractId; contract line price: per_term",
    ):
        assert f"  {line}\n" in result.stdout, f"{line!r} not in:\n{result.stdout}"

    config = load_config(path)
    assert config.path == path
    assert config.dbt_vars() == {
        "reporting_currency": "USD",
        "under_billed_tolerance_amount": 1.0,
        "under_billed_tolerance_pct": 1,
        "premium_response_hours": 4,
        "renewal_lookback_days": 365,
        "recoverable_billing_window_days": 90,
        "underuse_periods": 3,
        "precedence_rules": {
            "product": "most_generous",
            "service": "most_specific",
            "feature": "most_generous",
            "time_based": "most_generous",
        },
        "peak_units": ["seats"],
    }
    assert [(m.code, m.event_types, m.value, m.aggregation) for m in config.meters] == [
        ("API_CALLS", ("com.example.api.request",), "data.request_count", "sum"),
        ("STORAGE_GB", ("com.example.storage.snapshot",), "data.gb", "sum"),
    ]
    assert config.usage.event_id == ("source", "id")
    assert (config.usage.time, config.usage.type) == ("time", "type")
    assert (config.usage.customer, config.usage.customer_key) == ("data.customer", "billing_customer")
    assert config.billing_customer_account_key == "salesforce_account_id"
    assert config.billable_field == "Type"
    assert config.billable_values == ("Paid Repair", "Paid Phone Support")
    assert config.covered_values == ("Contract Support", "Warranty Repair")
    assert config.evidence == (("metadata_key", "sf_case_id"), ("description_pattern", r"Case (\d{8})"))
    assert config.renewal_link_field == "ParentServiceContractId"
    assert config.contract_line_price == "per_term"
    # The same file read twice is the same configuration (a run records this fingerprint).
    assert load_config(path).fingerprint() == config.fingerprint()
    assert describe(config) == [line.strip() for line in result.stdout.splitlines()[1:]]


def test_the_installed_command_checks_the_documented_example(tmp_path: Path) -> None:
    path = write(tmp_path, doc_yaml_blocks()[0])
    run = entitlements("check-config", path)
    assert run.returncode == 0, run.stderr
    assert f"{path}: valid" in run.stdout

    bad = write(tmp_path, "version: 2\n", "bad.yml")
    run = entitlements("check-config", bad)
    assert run.returncode == 1
    assert f"{bad}: the configuration has 1 problem" in run.stderr
    assert "line 1, key version: this project reads version 1 files, not 2" in run.stderr


@pytest.mark.parametrize("index", range(len(doc_yaml_blocks())))
def test_every_yaml_block_in_the_docs_is_valid(tmp_path: Path, index: int) -> None:
    load_config(write(tmp_path, doc_yaml_blocks()[index]))


@pytest.mark.parametrize(
    "path", sorted((ROOT / "tests" / "fixtures").rglob(CONFIG_FILE)), ids=lambda p: p.parent.name
)
def test_the_configuration_files_of_the_fixtures_are_valid(path: Path) -> None:
    assert load_config(path).path == path


def test_the_error_quoted_in_the_docs_is_the_one_given(tmp_path: Path) -> None:
    quoted = re.search(r"`entitlements\.yml: \.\.\. (line \d+, key [^`]+)`", DOC.read_text(encoding="utf-8"))
    assert quoted, "docs/configuration.md no longer quotes an error message"
    text = yml(
        """
        version: 1
        reporting_currency: USD
        tolerances:
          under_billed_amount: 1
        windows:
          underuse_periods: 3
        usage_events:
          customer: data.customer
        meters:
          API_CALLS:
            value: data.calls
            aggregation: avg
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.problems == [quoted.group(1)]


def test_every_dbt_var_the_file_sets_is_a_var_of_the_dbt_project(tmp_path: Path) -> None:
    project = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8"))
    config = load_config(write(tmp_path, doc_yaml_blocks()[0]))
    assert set(config.dbt_vars()) <= set(project["vars"])
    assert set(config.dbt_vars()["precedence_rules"]) == set(project["vars"]["precedence_rules"])


# ------------------------------------------------------------------------------- invalid files

INVALID = [
    pytest.param(
        yml(
            """
            service_deliveries:
              exclude_when:
                - "priority = 'Internal'"
                - "prio = 'Internal'"
            """
        ),
        4,
        "service_deliveries.exclude_when.1",
        'Referenced column "prio" not found',
        id="exclusion-unknown-column",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              exclude_when: customer_id
            """
        ),
        2,
        "service_deliveries.exclude_when",
        "must be true or false for a delivery, not a VARCHAR",
        id="exclusion-not-boolean",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              exclude_when:
                - "customer_id in (select customer_id from raw.crm_accounts)"
            """
        ),
        3,
        "service_deliveries.exclude_when.0",
        "must be one expression: no ';', comments, braces or subqueries",
        id="exclusion-subquery",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              business_hours:
                days: [mon, tue]
                from: "08:00"
                to: "18:00"
                time_zone: Mars/Olympus
            """
        ),
        6,
        "service_deliveries.business_hours.time_zone",
        "is not a known IANA time zone",
        id="business-hours-unknown-time-zone",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              business_hours:
                days: [mon]
                from: "18:00"
                to: "08:00"
                time_zone: UTC
            """
        ),
        5,
        "service_deliveries.business_hours.to",
        "must be later than from",
        id="business-hours-backwards",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              business_hours:
                days: [mon, funday]
                from: "08:00"
                to: "18:00"
                time_zone: UTC
            """
        ),
        3,
        "service_deliveries.business_hours.days.1",
        "must be a weekday (mon .. sun)",
        id="business-hours-unknown-day",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              business_hours:
                days: [mon]
                from: 8
                to: "18:00"
                time_zone: UTC
            """
        ),
        4,
        "service_deliveries.business_hours.from",
        'must be a time of day as "HH:MM"',
        id="business-hours-time-not-text",
    ),
    pytest.param(
        "Reporting_Currency: USD\n",
        1,
        "Reporting_Currency",
        "unknown key; did you mean reporting_currency?",
        id="unknown-top-level-key-near-a-known-one",
    ),
    pytest.param(
        yml(
            """
            version: 1
            tolerance:
              under_billed_amount: 1
            """
        ),
        2,
        "tolerance",
        "unknown key (known keys: version, reporting_currency, tolerances,",
        id="unknown-top-level-key",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              underbilled_amount: 1
            """
        ),
        2,
        "tolerances.underbilled_amount",
        "unknown key; did you mean under_billed_amount?",
        id="unknown-nested-key-near-a-known-one",
    ),
    pytest.param(
        "tolerances: 1\n",
        1,
        "tolerances",
        "must be a mapping of keys (under_billed_amount, under_billed_percent, premium_response_hours)",
        id="section-not-a-mapping",
    ),
    pytest.param(
        "- version: 1\n",
        1,
        "(top level)",
        "must be a mapping of keys (version, reporting_currency,",
        id="file-not-a-mapping",
    ),
    pytest.param(
        yml(
            """
            meters:
              API_CALLS:
                event_type: api.request
                value: data.calls
                aggregation: avg
            """
        ),
        5,
        "meters.API_CALLS.aggregation",
        "must be one of sum, count, max, latest, unique_count, not 'avg'",
        id="aggregation-avg",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              under_billed_amount: 1.00
              under_billed_percent: -0.5
            """
        ),
        3,
        "tolerances.under_billed_percent",
        "must be a number of at least 0, not -0.5",
        id="negative-tolerance",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              under_billed_amount: 1%
            """
        ),
        2,
        "tolerances.under_billed_amount",
        "must be a number of at least 0, not '1%'",
        id="tolerance-as-text",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              premium_response_hours: yes
            """
        ),
        2,
        "tolerances.premium_response_hours",
        "must be a number of at least 0, not True",
        id="tolerance-a-boolean",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              under_billed_percent: .nan
            """
        ),
        2,
        "tolerances.under_billed_percent",
        "must be a number of at least 0, not nan",
        id="tolerance-not-a-number",
    ),
    pytest.param(
        yml(
            """
            windows:
              renewal_lookback_days: 365
              underuse_periods: 2.5
            """
        ),
        3,
        "windows.underuse_periods",
        "must be a whole number of at least 1, not 2.5",
        id="window-not-an-integer",
    ),
    pytest.param(
        yml(
            """
            windows:
              recoverable_billing_window_days: 0
            """
        ),
        2,
        "windows.recoverable_billing_window_days",
        "must be a whole number of at least 1, not 0",
        id="window-zero",
    ),
    pytest.param(
        yml(
            """
            precedence:
              product: most_generous
              service: most_recent
            """
        ),
        3,
        "precedence.service",
        "must be one of most_generous, most_specific, latest_start, not 'most_recent'",
        id="precedence-rule-unknown",
    ),
    pytest.param(
        yml(
            """
            precedence:
              services: most_specific
            """
        ),
        2,
        "precedence.services",
        "unknown key (known keys: product, service, feature, time_based)",
        id="precedence-type-unknown",
    ),
    pytest.param(
        yml(
            """
            meters:
              api_calls:
                value: data.calls
            """
        ),
        2,
        "meters.api_calls",
        "a meter is named by its catalog entitlement code, upper case (API_CALLS)",
        id="meter-code-lower-case",
    ),
    pytest.param(
        yml(
            """
            meters:
              API_CALLS:
                event_type: api.request
            """
        ),
        2,
        "meters.API_CALLS",
        "needs value (the path of the quantity), or aggregation: count",
        id="meter-without-value",
    ),
    pytest.param(
        yml(
            """
            meters:
              API_CALLS:
                event_type: api.request
                value:
            """
        ),
        2,
        "meters.API_CALLS",
        "needs value (the path of the quantity), or aggregation: count",
        id="meter-with-empty-value",
    ),
    pytest.param(
        yml(
            """
            meters:
              API_CALLS:
                event_type: api.request
                value: data..calls
            """
        ),
        4,
        "meters.API_CALLS.value",
        "must be a field path (data.calls), not 'data..calls'",
        id="meter-value-not-a-path",
    ),
    pytest.param(
        "meters: [API_CALLS]\n",
        1,
        "meters",
        "must map each entitlement code (API_CALLS) to its meter",
        id="meters-a-list",
    ),
    pytest.param(
        yml(
            """
            meters:
              API_CALLS:
                event_type: api.request
                value: data.calls
              API_BYTES:
                event_type: [api.upload, api.request]
                value: data.bytes
            """
        ),
        6,
        "meters.API_BYTES.event_type",
        "'api.request' is already counted by meter API_CALLS",
        id="event-type-in-two-meters",
    ),
    pytest.param(
        yml(
            """
            meters:
              API_CALLS:
                event_type: api.request
                value: data.calls
              STORAGE_GB:
                value: data.gb
            """
        ),
        1,
        "meters",
        "a meter without event_type takes every event: with several meters, give each its event_type",
        id="several-meters-one-without-event-type",
    ),
    pytest.param(
        yml(
            r"""
            evidence:
              invoice_line_reference:
                - metadata_key: sf_case_id
                - description_pattern: 'Case \d{8}'
            """
        ),
        4,
        "evidence.invoice_line_reference.1.description_pattern",
        "must have exactly one capture group (the reference), it has 0",
        id="description-pattern-without-group",
    ),
    pytest.param(
        yml(
            r"""
            evidence:
              invoice_line_reference:
                - description_pattern: '(Case|Ticket) (\d{8})'
            """
        ),
        3,
        "evidence.invoice_line_reference.0.description_pattern",
        "must have exactly one capture group (the reference), it has 2",
        id="description-pattern-with-two-groups",
    ),
    pytest.param(
        yml(
            r"""
            evidence:
              invoice_line_reference:
                - description_pattern: 'Case (\d{8}'
            """
        ),
        3,
        "evidence.invoice_line_reference.0.description_pattern",
        "is not a valid regular expression (",
        id="description-pattern-invalid-regex",
    ),
    pytest.param(
        yml(
            r"""
            evidence:
              invoice_line_reference:
                - description_pattern: "Case '(\\d{8})'"
            """
        ),
        3,
        "evidence.invoice_line_reference.0.description_pattern",
        "must not contain a single quote",
        id="description-pattern-with-a-quote",
    ),
    pytest.param(
        yml(
            """
            evidence:
              invoice_line_reference:
                - metadata_key: sf case id
            """
        ),
        3,
        "evidence.invoice_line_reference.0.metadata_key",
        "must be a metadata key name, not 'sf case id'",
        id="metadata-key-with-a-space",
    ),
    pytest.param(
        yml(
            """
            evidence:
              invoice_line_reference:
                - metadata_key: sf_case_id
                - line_item_field: case
            """
        ),
        4,
        "evidence.invoice_line_reference.1.line_item_field",
        "unknown strategy (known: metadata_key, description_pattern)",
        id="evidence-strategy-unknown",
    ),
    pytest.param(
        yml(
            """
            evidence:
              invoice_line_reference:
                - metadata_key: sf_case_id
                  description_pattern: 'Case (\\d+)'
            """
        ),
        3,
        "evidence.invoice_line_reference.0",
        "each strategy is one key: metadata_key: NAME or description_pattern: REGEX",
        id="evidence-strategy-with-two-keys",
    ),
    pytest.param(
        yml(
            """
            evidence:
              invoice_line_reference:
                metadata_key: sf_case_id
            """
        ),
        2,
        "evidence.invoice_line_reference",
        "must be a list of strategies, tried in order",
        id="evidence-not-a-list",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              billable:
                field: Type
                covered: [Contract Support]
            """
        ),
        2,
        "service_deliveries.billable",
        "needs customer_pay: the values of the field that mean the customer pays",
        id="billable-field-without-customer-pay",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              billable:
                customer_pay: [Paid Repair]
            """
        ),
        2,
        "service_deliveries.billable",
        "needs field: the field whose value tells a customer-pay delivery",
        id="billable-without-field",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              billable:
                field:
                customer_pay: [Paid Repair]
            """
        ),
        2,
        "service_deliveries.billable",
        "needs field: the field whose value tells a customer-pay delivery",
        id="billable-with-empty-field",
    ),
    pytest.param(
        yml(
            """
            service_deliveries:
              billable:
                field: Type
                customer_pay: [Paid Repair, Paid Phone Support]
                covered: [Contract Support, Paid Repair]
            """
        ),
        5,
        "service_deliveries.billable.covered",
        "Paid Repair cannot be both customer_pay and covered",
        id="value-both-customer-pay-and-covered",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              under_billed_amount: 1
              under_billed_percent: 0.5
              under_billed_amount: 2
            """
        ),
        4,
        "tolerances.under_billed_amount",
        "is given twice",
        id="duplicate-key-in-a-section",
    ),
    pytest.param(
        yml(
            """
            reporting_currency: USD
            windows:
              underuse_periods: 3
            reporting_currency: EUR
            """
        ),
        4,
        "reporting_currency",
        "is given twice",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        yml(
            """
            reporting_currency: USD
            version: 1: 2
            """
        ),
        2,
        None,
        "column 11: not valid YAML (mapping values are not allowed here)",
        id="yaml-syntax-error",
    ),
    pytest.param(
        yml(
            """
            tolerances:
              under_billed_amount: 1
             under_billed_percent: 2
            """
        ),
        3,
        None,
        "column 2: not valid YAML (",
        id="yaml-bad-indentation",
    ),
    pytest.param(
        yml(
            """
            reporting_currency: USD
            version: !custom 1
            """
        ),
        2,
        "version",
        "not a valid value",
        id="yaml-unknown-tag",
    ),
    pytest.param(
        yml(
            """
            windows:
              underuse_periods: !!int three
            """
        ),
        2,
        "windows.underuse_periods",
        "not a valid value",
        id="yaml-value-not-of-its-tag",
    ),
    pytest.param(
        "version: 2\n",
        1,
        "version",
        "this project reads version 1 files, not 2",
        id="version-2",
    ),
    pytest.param(
        yml(
            """
            version: 1
            reporting_currency: usd
            """
        ),
        2,
        "reporting_currency",
        "must be an ISO 4217 code (USD), not 'usd'",
        id="reporting-currency-lower-case",
    ),
    pytest.param(
        yml(
            """
            crm:
              renewal_link_field: Previous_Contract__c
              contract_line_price: quarterly
            """
        ),
        3,
        "crm.contract_line_price",
        "must be one of per_term, annual, monthly, not 'quarterly'",
        id="contract-line-price-quarterly",
    ),
    pytest.param(
        yml(
            """
            crm:
              renewal_link_field: Previous Contract
            """
        ),
        2,
        "crm.renewal_link_field",
        "must be a field's API name, not 'Previous Contract'",
        id="renewal-link-field-not-an-api-name",
    ),
    pytest.param(
        yml(
            """
            identity:
              billing_customer_metadata_key: salesforce account
            """
        ),
        2,
        "identity.billing_customer_metadata_key",
        "must be a metadata key name, not 'salesforce account'",
        id="identity-key-with-a-space",
    ),
    pytest.param(
        yml(
            """
            usage_events:
              event_id: [source, id]
              time: [time, data.timestamp]
            """
        ),
        3,
        "usage_events.time",
        "must be one field path, not a list",
        id="usage-events-time-a-list",
    ),
    pytest.param(
        yml(
            """
            usage_events:
              event_id: [source, data id]
            """
        ),
        2,
        "usage_events.event_id.1",
        "must be a field path (data.calls), not 'data id'",
        id="usage-events-event-id-item-not-a-path",
    ),
    pytest.param(
        yml(
            """
            usage_events:
              customer: data.customer
              customer_key: stripe
            """
        ),
        3,
        "usage_events.customer_key",
        "must be one of crm_account, billing_customer, mapping, not 'stripe'",
        id="usage-events-customer-key-unknown",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fragment"), INVALID)
def test_an_invalid_file_names_the_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, fragment: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    problem = find_problem(error.problems, line, key, fragment)
    assert error.problems == [problem], "exactly one problem expected"
    assert error.path == path
    message = str(error)
    assert message.startswith(f"{path}: the configuration has 1 problem, so nothing was read:\n")
    assert f"  - {problem}\n" in message
    assert "docs/configuration.md" in message

    result = check_config(path)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert f"{path}: the configuration has 1 problem" in result.stderr
    assert f"  - {problem}\n" in result.stderr


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    text = yml(
        """
        version: 1
        reporting_currency: usd
        tolerances:
          under_billed_percent: -1
        windows:
          underuse_periods: 2.5
        meters:
          API_CALLS:
            event_type: api.request
            aggregation: avg
        crm:
          contract_line_price: quarterly
        """
    )
    path = write(tmp_path, text)
    expected = [
        (2, "reporting_currency", "must be an ISO 4217 code (USD), not 'usd'"),
        (4, "tolerances.under_billed_percent", "must be a number of at least 0, not -1"),
        (6, "windows.underuse_periods", "must be a whole number of at least 1, not 2.5"),
        (
            10,
            "meters.API_CALLS.aggregation",
            "must be one of sum, count, max, latest, unique_count, not 'avg'",
        ),
        (8, "meters.API_CALLS", "needs value (the path of the quantity), or aggregation: count"),
        (12, "crm.contract_line_price", "must be one of per_term, annual, monthly, not 'quarterly'"),
    ]

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert len(problems) == len(expected), problems
    found = [find_problem(problems, *want) for want in expected]
    assert sorted(found) == sorted(problems)
    assert str(caught.value).startswith(f"{path}: the configuration has 6 problems, so nothing was read:")

    result = check_config(path)
    assert result.exit_code == 1
    assert "the configuration has 6 problems" in result.stderr
    for problem in problems:
        assert f"  - {problem}\n" in result.stderr


# ------------------------------------------------------------------------------- valid variations


def test_a_count_meter_needs_no_value_and_a_single_meter_no_event_type(tmp_path: Path) -> None:
    text = yml(
        """
        meters:
          API_CALLS:
            aggregation: count
        """
    )
    config = load_config(write(tmp_path, text))
    assert [(m.code, m.event_types, m.value, m.aggregation) for m in config.meters] == [
        ("API_CALLS", (), None, "count")
    ]
    assert "meter API_CALLS: events of type every event (type); 1 per event" in describe(config)


def test_check_config_says_which_field_holds_the_recorded_time(tmp_path: Path) -> None:
    text = yml(
        """
        usage_events:
          recorded_time: recordedtime
        meters:
          API_CALLS:
            aggregation: count
        """
    )
    assert (
        "usage events: id id, time time, customer subject (crm_account), recorded time recordedtime"
    ) in describe(load_config(write(tmp_path, text)))


def test_precedence_names_some_types_and_the_others_keep_most_generous(tmp_path: Path) -> None:
    text = yml(
        """
        precedence:
          feature: latest_start
        """
    )
    config = load_config(write(tmp_path, text))
    assert config.dbt_vars() == {
        "precedence_rules": {
            "product": "most_generous",
            "service": "most_generous",
            "feature": "latest_start",
            "time_based": "most_generous",
        }
    }


# ------------------------------------------------------------------------ finding and no file


def test_find_config_explicit_wins_then_the_export_dir_then_none(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    explicit = write(tmp_path, "version: 1\n", "mine.yml")

    assert find_config(export, None) is None
    assert find_config(None, None) is None
    assert find_config(export, explicit) == explicit

    in_export = write(export, "version: 1\n")
    assert find_config(export, None) == in_export
    assert find_config(export, explicit) == explicit
    assert find_config(None, explicit) == explicit


def test_find_config_ignores_a_directory_named_like_the_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).mkdir()
    assert find_config(tmp_path, None) is None


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yml"
    # An explicit file is returned as given, so its absence is reported when it is read.
    assert find_config(tmp_path, missing) == missing
    with pytest.raises(ConfigError) as caught:
        load_config(missing)
    assert caught.value.problems == ["the file does not exist"]
    assert str(caught.value).startswith(f"{missing}: the configuration has 1 problem")

    result = check_config(missing)
    assert result.exit_code == 1
    assert f"{missing}: the configuration has 1 problem" in result.stderr
    assert "the file does not exist" in result.stderr


def test_no_file_gives_the_defaults() -> None:
    assert load_config(None) is DEFAULT
    assert DEFAULT.dbt_vars() == {}


@pytest.mark.parametrize("text", ["", "\n", "# nothing configured yet\n", "---\n"], ids=repr)
def test_an_empty_file_is_valid_and_gives_the_defaults(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    config = load_config(path)
    assert config.path == path
    assert config.dbt_vars() == {}
    assert dataclasses.replace(config, path=None) == DEFAULT
    assert config.meters == ()
    assert config.evidence == ()
    assert (config.renewal_link_field, config.contract_line_price) == ("ParentServiceContractId", "per_term")

    result = check_config(path)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{path}: valid\n  renewal link: ParentServiceContractId; contract line price: per_term\n"
    )


def test_business_hours_become_iso_days_and_minutes_for_dbt(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE
    path.write_text(
        yml(
            """
            service_deliveries:
              business_hours:
                days: [Mon, tue, wed, thu, fri, sat]
                from: "07:30"
                to: "24:00"
                time_zone: America/New_York
            """
        )
    )
    assert load_config(path).dbt_vars() == {
        "business_hours": {
            "days": [1, 2, 3, 4, 5, 6],
            "start_minute": 450,
            "end_minute": 1440,
            "time_zone": "America/New_York",
        }
    }


def test_meters_not_summed_are_passed_to_dbt_by_code(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE
    path.write_text(
        yml(
            """
            meters:
              API_CALLS: {event_type: api, value: data.n}
              REQUESTS: {event_type: req, aggregation: count}
              SEATS: {event_type: seats, value: data.in_use, aggregation: max}
              STORAGE_GB: {event_type: storage, value: data.gb, aggregation: latest}
              ACTIVE_USERS: {event_type: seen, value: data.user, aggregation: unique_count}
            """
        )
    )
    assert load_config(path).dbt_vars() == {
        "meter_aggregations": {"SEATS": "max", "STORAGE_GB": "latest", "ACTIVE_USERS": "unique_count"}
    }


def test_ignore_takes_file_name_patterns_and_check_config_lists_them(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, yml("ignore: [Opportunity*, crm/Product2.csv]")))
    assert config.ignore == ("Opportunity*", "crm/Product2.csv")
    assert "files not read: Opportunity*, crm/Product2.csv" in describe(config)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, yml("ignore: ['', 3]"), "bad.yml"))
    assert "ignore.0: must be a file name pattern (Opportunity*), not ''" in str(caught.value)
