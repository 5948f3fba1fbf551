-- Where two grants of the same customer and entitlement overlap in time and scope,
-- which one wins (lowest precedence_rank) and why. The loser stays visible here and
-- in fct_entitlements_history; it is simply not the one a delivery consumes.
with

grants as (
    select * from {{ ref('int_entitlement_grants') }}
),

pairs as (
    select
        winner.entitlement_id as winner_entitlement_id,
        loser.entitlement_id as loser_entitlement_id,
        winner.customer_id,
        winner.entitlement_code,
        winner.precedence_rule,
        winner.contract_id as winner_contract_id,
        loser.contract_id as loser_contract_id,
        winner.limit_quantity as winner_limit,
        loser.limit_quantity as loser_limit,
        winner.sla_response_hours as winner_sla,
        loser.sla_response_hours as loser_sla,
        winner.asset_id as winner_asset_id,
        loser.asset_id as loser_asset_id,
        winner.location_id as winner_location_id,
        loser.location_id as loser_location_id,
        winner.valid_from as winner_valid_from,
        loser.valid_from as loser_valid_from,
        case
            when winner.valid_from > loser.valid_from then winner.valid_from else loser.valid_from
        end as overlap_from,
        -- the earlier end; null (open-ended) is the later
        case
            when winner.valid_to is null then loser.valid_to
            when loser.valid_to is null or winner.valid_to < loser.valid_to then winner.valid_to
            else loser.valid_to
        end as overlap_to
    from grants as winner
    inner join grants as loser
        on
            winner.customer_id = loser.customer_id
            and winner.entitlement_code = loser.entitlement_code
            and winner.precedence_rank < loser.precedence_rank
            and (loser.valid_to is null or winner.valid_from < loser.valid_to)
            and (winner.valid_to is null or winner.valid_to > loser.valid_from)
            and (winner.asset_id is null or loser.asset_id is null or winner.asset_id = loser.asset_id)
            and (
                winner.location_id is null or loser.location_id is null
                or winner.location_id = loser.location_id
            )
)

select
    winner_entitlement_id || ' > ' || loser_entitlement_id as precedence_id,
    customer_id,
    entitlement_code,
    winner_entitlement_id,
    loser_entitlement_id,
    winner_contract_id,
    loser_contract_id,
    overlap_from,
    overlap_to,
    precedence_rule,
    precedence_rule || ': ' || case
        when precedence_rule = 'most_specific' and winner_asset_id is not null and loser_asset_id is null
            then 'asset-specific beats general'
        when precedence_rule = 'most_specific' and winner_location_id is not null and loser_location_id is null
            then 'site-specific beats general'
        when precedence_rule = 'latest_start' and winner_valid_from > loser_valid_from
            then 'started later'
        when winner_limit is null and loser_limit is not null then 'unlimited beats a limit'
        when winner_limit > loser_limit then 'larger allowance'
        when coalesce(winner_sla, 1000000) < coalesce(loser_sla, 1000000) then 'faster response SLA'
        when winner_asset_id is not null and loser_asset_id is null then 'asset-specific beats general'
        else 'tie on terms: lower contract line id'
    end as reason
from pairs
