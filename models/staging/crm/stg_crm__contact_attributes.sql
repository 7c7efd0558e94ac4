with base as (
    select * from {{ ref('base_crm__contact_attributes') }}
),

final as (
    select
        {{ dbt.concat(['customer_id', "':'", 'attribute']) }} as customer_attribute_id,
        customer_id,
        attribute,
        attribute_type,
        value_text,
        value_number,
        value_boolean,
        updated_at,
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
