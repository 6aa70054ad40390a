// The price history of a watch (crawl UI): a step line drawn with the vendored uPlot.
(function () {
  function draw() {
    var box = document.getElementById("price-chart");
    if (!box || typeof uPlot === "undefined") return;
    var data = JSON.parse(box.dataset.series);
    if (!data.x.length) { box.textContent = "No prices yet."; box.classList.add("muted"); return; }
    var opts = {
      width: Math.max(box.clientWidth, 320), height: 260,
      scales: { x: { time: true } },
      series: [
        {},
        { label: "Price (" + data.currency + ")", stroke: "#3157d5", width: 2, fill: "rgba(49,87,213,.08)",
          paths: uPlot.paths.stepped({ align: 1 }), points: { show: true, size: 6 } },
      ],
      axes: [{}, { label: data.currency, size: 70 }],
    };
    box.chart = new uPlot(opts, [data.x, data.y], box);
    box.dataset.drawn = "true";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
