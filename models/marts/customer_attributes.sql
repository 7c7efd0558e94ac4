-- One row per customer: every custom contact attribute declared in the dbt var
-- custom_attributes as a typed column (null when the CRM sent none). Segment rules use them
-- as traits; the rule compiler reads the same declaration.
{%- set declared = segwise.custom_attributes() %}
{%- set value_of = {'text': 'value_text', 'number': 'value_number', 'boolean': 'value_boolean'} %}
{%- set type_of = {'text': dbt.type_string(), 'number': segwise.type_double(), 'boolean': dbt.type_boolean()} %}

with customers as (
    select * from {{ ref('dim_customers') }}
),

attributes as (
    select * from {{ ref('stg_crm__contact_attributes') }}
),

pivoted as (
    select
        customer_id,
        {%- for name, spec in declared.items() %}
        {%- set picked = "case when attribute = '" ~ name ~ "' then " ~ value_of[spec.type] ~ " end" %}
        {% if spec.type == 'boolean' %}{{ dbt.bool_or(picked) }}{% else %}max({{ picked }}){% endif %} as {{ name }},
        {%- endfor %}
        count(*) as attributes_count
    from attributes
    group by customer_id
),

final as (
    select
        customers.customer_id,
        {%- for name, spec in declared.items() %}
        cast(pivoted.{{ name }} as {{ type_of[spec.type] }}) as {{ name }},
        {%- endfor %}
        coalesce(pivoted.attributes_count, 0) as attributes_count
    from customers
    left join pivoted
        on customers.customer_id = pivoted.customer_id
)

select * from final
