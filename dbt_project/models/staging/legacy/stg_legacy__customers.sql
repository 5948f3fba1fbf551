with

source as (
    select * from {{ source('legacy', 'customers') }}
),

renamed as (
    select
        -- ids
        trim(cust_no) as legacy_customer_no,
        -- attributes
        trim(cust_name) as customer_name,
        upper(trim(cntry)) as country,
        upper(trim(curr_cd)) as currency,
        -- lineage
        _source_file
    from source
)

select * from renamed
