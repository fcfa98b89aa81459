module tkeha.invalid/apiserver-client

go 1.19
