-- Nothing vanishes: for every raw table, staged rows + quarantined rows = raw rows.
with counts as (
    select 'crm_contacts' as t, (select count(*) from {{ source('crm', 'crm_contacts') }}) as raw_rows,
        (select count(*) from {{ ref('stg_crm__contacts') }}) as staged_rows
    union all
    select 'web_events', (select count(*) from {{ source('web', 'web_events') }}),
        (select count(*) from {{ ref('stg_web__events') }})
    union all
    select 'orders', (select count(*) from {{ source('shop', 'orders') }}),
        (select count(*) from {{ ref('stg_shop__orders') }})
    union all
    select 'order_items', (select count(*) from {{ source('shop', 'order_items') }}),
        (select count(*) from {{ ref('stg_shop__order_items') }})
    union all
    select 'products', (select count(*) from {{ source('shop', 'products') }}),
        (select count(*) from {{ ref('stg_shop__products') }})
    union all
    select 'email_campaigns', (select count(*) from {{ source('email', 'email_campaigns') }}),
        (select count(*) from {{ ref('stg_email__campaigns') }})
    union all
    select 'email_events', (select count(*) from {{ source('email', 'email_events') }}),
        (select count(*) from {{ ref('stg_email__events') }})
),

quarantined as (
    select source_table, count(*) as n
    from {{ ref('quarantine_rows') }}
    where detected_in = 'staging'
    group by source_table
)

select counts.t, counts.raw_rows, counts.staged_rows, coalesce(quarantined.n, 0) as quarantined_rows
from counts
left join quarantined on counts.t = quarantined.source_table
where counts.raw_rows <> counts.staged_rows + coalesce(quarantined.n, 0)
