{#- Rows of loads that are current: landed or validated, and not replaced by a corrected file of
    the same name (ingest/land.py keeps a replaced load's rows in raw, so a refused correction can
    be undone; audit.ingest_manifest says which loads count). -#}
{% macro current_load() -%}
    _load_id in (
        select manifest.load_id
        from {{ source('audit', 'ingest_manifest') }} as manifest
        where
            manifest.status in ('landed', 'validated')
            and manifest.superseded_by is null
    )
{%- endmacro %}
