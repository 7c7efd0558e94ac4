-- One row per monthly acquisition cohort (the month of a customer's first valid order)
-- and month since acquisition, up to the as-of month: the cohort's size, how many of its
-- customers ordered in that month, the retention rate, orders and revenue. Months with no
-- activity are rows with zeros, so a retention curve has no gaps; the as-of month is
-- partial (is_partial_month).
with orders as (
    select * from {{ ref('fct_orders') }}
),

months as (
    select
        customer_id,
        order_id,
        order_amount,
        cast({{ dbt.date_trunc('month', 'order_date') }} as date) as activity_month
    from orders
),

acquisition as (
    select
        customer_id,
        min(activity_month) as cohort_month
    from months
    group by customer_id
),

cohorts as (
    select
        cohort_month,
        count(*) as cohort_customers
    from acquisition
    group by cohort_month
),

activity as (
    select
        acquisition.cohort_month,
        {{ dbt.datediff('acquisition.cohort_month', 'months.activity_month', 'month') }} as months_since_acquisition,
        count(distinct months.customer_id) as active_customers,
        count(*) as orders,
        sum(months.order_amount) as revenue
    from months
    inner join acquisition on months.customer_id = acquisition.customer_id
    group by 1, 2
),

as_of_month as (
    select cast({{ dbt.date_trunc('month', segwise.as_of_date()) }} as date) as month_start
),

grid as (
    select
        cohorts.cohort_month,
        cohorts.cohort_customers,
        spine.n as months_since_acquisition,
        as_of_month.month_start as as_of_month
    from cohorts
    cross join as_of_month
    inner join ({{ segwise.integer_spine(3) }}) as spine
        on spine.n <= {{ dbt.datediff('cohorts.cohort_month', 'as_of_month.month_start', 'month') }}
),

final as (
    select
        {{ dbt.concat([dbt.cast('grid.cohort_month', dbt.type_string()), "':'", dbt.cast('grid.months_since_acquisition', dbt.type_string())]) }} as cohort_period_id,
        grid.cohort_month,
        grid.months_since_acquisition,
        cast({{ dbt.dateadd('month', 'grid.months_since_acquisition', 'grid.cohort_month') }} as date) as activity_month,
        grid.cohort_customers,
        coalesce(activity.active_customers, 0) as active_customers,
        cast(coalesce(activity.active_customers, 0) as {{ segwise.type_double() }}) / grid.cohort_customers as retention_rate,
        coalesce(activity.orders, 0) as orders,
        coalesce(activity.revenue, 0) as revenue,
        {{ dbt.datediff('grid.cohort_month', 'grid.as_of_month', 'month') }} = grid.months_since_acquisition as is_partial_month
    from grid
    left join activity
        on grid.cohort_month = activity.cohort_month
        and grid.months_since_acquisition = activity.months_since_acquisition
)

select * from final
