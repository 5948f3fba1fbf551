{#- Salesforce writes a record id in two forms: 15 characters, case-sensitive (the user interface,
    a record's URL, reports) and 18, the same 15 plus a case-safe suffix (the API, Data Loader).
    The ingest lands a Salesforce file's ids in the 18-character form (sf_id18,
    entitlements/ingest/adapters/salesforce.py); another system's copy of one (a Stripe metadata
    value, a metering subject) may hold either, so int_crm_record_ids also answers to the
    15-character form. Suffix: each block of 5 characters gives one character, its upper-case
    letters as bits (first character lowest) indexing A-Z, 0-5. -#}

{#- The 15-character form of `id` when it is an 18-character Salesforce id (its last three
    characters are the suffix of its first 15; by chance, one other id in 32,768), else null. -#}
{% macro salesforce_id15(id) -%}
    case
        when length({{ id }}) = 18 and substr({{ id }}, 16, 3) = {{ salesforce_id_suffix(id) }}
            then substr({{ id }}, 1, 15)
    end
{%- endmacro %}

{% macro salesforce_id_suffix(id) -%}
    {%- for block in range(3) %}
        {%- if not loop.first %} || {% endif -%}
        substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ012345', 1
        {%- for position in range(5) %}
            + case when substr({{ id }}, {{ block * 5 + position + 1 }}, 1) between 'A' and 'Z' then {{ 2 ** position }} else 0 end
        {%- endfor %}, 1)
    {%- endfor -%}
{%- endmacro %}
