{% test dbt_utils_free_accepted_range(model, column_name, min_value, max_value) %}
{#- Rows whose value lies outside [min_value, max_value] (dbt_utils.accepted_range without
    the package; nulls pass: test not_null apart). -#}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}
