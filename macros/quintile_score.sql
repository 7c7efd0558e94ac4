{% macro quintile_score(column, descending=false) -%}
    {#- 1..5 by percent rank: ties share a score, so the result is the same on every engine -#}
    least(5, 1 + cast(floor(5 * percent_rank() over (order by {{ column }} {{ 'desc' if descending else 'asc' }})) as integer))
{%- endmacro %}
