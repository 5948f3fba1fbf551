-- One row per customer site.
with

locations as (
    select * from {{ ref('stg_crm__locations') }}
),

final as (
    select
        location_id,
        customer_id,
        location_name,
        country
    from locations
)

select * from final
