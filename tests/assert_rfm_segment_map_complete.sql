-- Every (r_score, f_score) pair 1..5 x 1..5 has a segment: otherwise customers would be
-- dropped by the inner join in customer_rfm.
with map as (
    select * from {{ ref('rfm_segment_map') }}
)

select count(*) as pairs
from map
where r_score between 1 and 5 and f_score between 1 and 5
having count(*) <> 25
