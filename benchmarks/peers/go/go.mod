module smart_ratelimit/benchmarks/peers/go

go 1.19

require golang.org/x/time v0.0.0

replace golang.org/x/time => /usr/share/gocode/src/golang.org/x/time
