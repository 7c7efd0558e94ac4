{% test dbt_utils_free_unique_combination(model, columns) %}
{#- The combination of `columns` is unique (dbt_utils.unique_combination_of_columns without
    the package: dbt deps has no network here). -#}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
