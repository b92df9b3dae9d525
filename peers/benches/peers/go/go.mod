module spool/benches/peers/go

go 1.19
