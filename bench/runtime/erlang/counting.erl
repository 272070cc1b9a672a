%% Savina counting for Erlang: a producer sends N increments to a counter,
%% then asks for the total and checks it.
%% Usage: counting REPS N. Counts N+2 messages per rep.
-module(counting).
-export([main/1]).

main(Args) ->
    [Reps, N] = bench_util:ints(Args),
    S = bench_util:median_secs(Reps, fun() -> rep(N) end),
    bench_util:report(counting, (N + 2) / S, "msgs/s"),
    halt().

rep(N) ->
    Main = self(),
    Counter = spawn(fun() -> counter(0) end),
    Producer = spawn(fun() -> producer(Counter, Main, N) end),
    S = bench_util:time_secs(fun() ->
        Producer ! start,
        receive done -> ok end
    end),
    exit(Producer, kill),
    exit(Counter, kill),
    S.

counter(Count) ->
    receive
        inc -> counter(Count + 1);
        {get, From} -> From ! {total, Count}, counter(Count)
    end.

producer(Counter, Main, N) ->
    receive
        start ->
            send_incs(Counter, N),
            Counter ! {get, self()},
            producer(Counter, Main, N);
        {total, N} -> Main ! done;
        {total, Other} -> io:format(standard_error, "counting: got ~B, want ~B~n", [Other, N]),
                          Main ! done
    end.

send_incs(_, 0) -> ok;
send_incs(Counter, I) -> Counter ! inc, send_incs(Counter, I - 1).
